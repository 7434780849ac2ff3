import Testing
@testable import MarqueePolicy
import MarqueeRedis
import MarqueeTestSupport

@Suite("RedisEndpoint parsing")
struct RedisEndpointTests {
    @Test("accepted forms")
    func accepted() throws {
        let plain = try RedisEndpoint(parsing: "redis://cache.internal")
        #expect(plain.address == .tcp(host: "cache.internal", port: 6379))
        #expect(plain.password == nil && plain.database == 0)

        let full = try RedisEndpoint(parsing: "redis://:s3cret@10.0.0.5:6380/2")
        #expect(full.address == .tcp(host: "10.0.0.5", port: 6380))
        #expect(full.password == "s3cret" && full.username == nil && full.database == 2)
        #expect(full.description == "redis://:***@10.0.0.5:6380/2")

        let acl = try RedisEndpoint(parsing: "redis://gateway:p%40ss%3A1@[::1]:7000/")
        #expect(acl.address == .tcp(host: "::1", port: 7000))
        #expect(acl.username == "gateway" && acl.password == "p@ss:1")

        let unix = try RedisEndpoint(parsing: "unix:///run/redis/redis.sock")
        #expect(unix.address == .unix(path: "/run/redis/redis.sock"))
        #expect(try RedisEndpoint(parsing: "unix:///tmp/r.sock?db=3").database == 3)
        #expect(try RedisEndpoint(parsing: "REDIS://localhost:1").address == .tcp(host: "localhost", port: 1))
    }

    @Test("garbage is refused with the part that is wrong")
    func refused() {
        let cases: [(String, RedisEndpoint.ParseError)] = [
            ("", .empty),
            ("localhost:6379", .unsupportedScheme("localhost:6379")),
            ("rediss://host", .unsupportedScheme("rediss")),
            ("http://host", .unsupportedScheme("http")),
            ("redis://", .invalidHost("")),
            ("redis://host:0", .invalidPort("0")),
            ("redis://host:65536", .invalidPort("65536")),
            ("redis://host:-1", .invalidPort("-1")),
            ("redis://host:http", .invalidPort("http")),
            ("redis://host:", .invalidPort("")),
            ("redis://host:99999999999999999999", .invalidPort("99999999999999999999")),
            ("redis://host/db", .invalidDatabase("db")),
            ("redis://host/-1", .invalidDatabase("-1")),
            ("redis://host/99999999999", .invalidDatabase("99999999999")),
            ("redis://ho st", .controlCharacter),
            ("redis://host\u{0}", .controlCharacter),
            ("redis://host\r\nAUTH x", .controlCharacter),
            ("redis://ho$t", .invalidHost("ho$t")),
            ("redis://-host", .invalidHost("-host")),
            ("redis://a..b", .invalidHost("a..b")),
            ("redis://[::1", .invalidHost("[::1")),
            ("redis://[not-ip]:1", .invalidHost("not-ip")),
            ("redis://[::1]x", .invalidHost("[::1]x")),
            ("redis://password@host", .invalidCredentials("expected ':password@' or 'user:password@'")),
            ("redis://:@host", .invalidCredentials("empty password")),
            ("redis://:%zz@host", .invalidCredentials("bad percent-encoding")),
            ("redis://:%ff@host", .invalidCredentials("not UTF-8")),
            ("unix://relative.sock", .invalidPath("relative.sock")),
            ("unix:///", .invalidPath("/")),
            ("unix:///tmp/", .invalidPath("/tmp/")),
            ("unix:///tmp/x?db=", .invalidDatabase("")),
            ("unix:///tmp/x?user=1", .invalidDatabase("user=1")),
        ]
        for (text, expected) in cases {
            #expect(throws: expected, "\(text.debugDescription)") { try RedisEndpoint(parsing: text) }
        }
        #expect("\(RedisEndpoint.ParseError.invalidPort("x"))".contains("1...65535"))
    }

    @Test("random bytes never crash the parser")
    func fuzz() {
        var generator = SeededGenerator(seed: 2024)
        let alphabet = Array("redis://unix:@[]:/?%=0123456789abc.-_ \u{0}é".unicodeScalars)
        for _ in 0..<5000 {
            let length = Int(generator.next() % 40)
            var text = generator.next() % 2 == 0 ? "redis://" : ""
            for _ in 0..<length { text.unicodeScalars.append(alphabet[Int(generator.next() % UInt64(alphabet.count))]) }
            if let endpoint = try? RedisEndpoint(parsing: text) {
                if case .tcp(_, let port) = endpoint.address { #expect((1...65535).contains(port)) }
                #expect(endpoint.database >= 0)
            }
        }
    }
}
