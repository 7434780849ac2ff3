import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// An S3 bucket (AWS or any S3-compatible endpoint), requests signed with our own SigV4:
/// PUT, multipart upload for large files, GET with Range, HEAD, ListObjectsV2, DELETE; path-style
/// (`endpoint/bucket/key`) or virtual-host (`bucket.endpoint/key`) addressing.
public struct S3Store: ObjectStore {
    public enum Addressing: String, Sendable {
        case path
        case virtualHost = "virtual-host"
    }

    public struct Configuration: Sendable {
        /// `http://127.0.0.1:9000` or `https://s3.eu-west-1.amazonaws.com`.
        public var endpoint: String
        public var region: String
        public var bucket: String
        public var accessKey: String
        public var secretKey: String
        public var addressing: Addressing
        /// Files at least this large go up in parts (default 16 MiB).
        public var multipartThreshold = 16 << 20
        /// Part size; S3 needs 5 MiB or more for every part but the last (default 8 MiB).
        public var partSize = 8 << 20
        /// Keys per ListObjectsV2 page (S3's maximum and default: 1000).
        public var listPageSize = 1000

        public init(endpoint: String, region: String, bucket: String, accessKey: String, secretKey: String, addressing: Addressing = .path) {
            self.endpoint = endpoint
            self.region = region
            self.bucket = bucket
            self.accessKey = accessKey
            self.secretKey = secretKey
            self.addressing = addressing
        }
    }

    public let configuration: Configuration
    let signer: SigV4
    let scheme: String
    let host: String
    let port: Int?
    let client: HTTPClient

    public init(_ configuration: Configuration, client: HTTPClient = .shared) throws(StoreError) {
        guard let url = URLComponents(string: configuration.endpoint), let scheme = url.scheme, scheme == "http" || scheme == "https",
            let host = url.host, !host.isEmpty
        else {
            throw .backend("S3 endpoint must be http(s)://HOST[:PORT], got \(configuration.endpoint)")
        }
        guard configuration.bucket.range(of: "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", options: .regularExpression) != nil else {
            throw .backend("S3 bucket name \(configuration.bucket.debugDescription) is not valid")
        }
        guard configuration.partSize >= 5 << 20 else { throw .backend("S3 part size must be at least 5 MiB") }
        self.configuration = configuration
        signer = SigV4(accessKey: configuration.accessKey, secretKey: configuration.secretKey, region: configuration.region)
        self.scheme = scheme
        self.host = host
        port = url.port
        self.client = client
    }

    // MARK: - Requests

    struct Reply {
        let status: Int
        let headers: HTTPHeaders
        let body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    /// The host header and the path for `key` (nil: the bucket itself).
    func location(_ key: ObjectKey?) -> (host: String, path: String) {
        let portSuffix = port.map { ":\($0)" } ?? ""
        let encodedKey = key.map { SigV4.encode($0.value, keepSlash: true) } ?? ""
        switch configuration.addressing {
        case .path:
            return (host + portSuffix, "/\(configuration.bucket)" + (key == nil ? "" : "/\(encodedKey)"))
        case .virtualHost:
            return ("\(configuration.bucket).\(host)\(portSuffix)", "/\(encodedKey)")
        }
    }

    /// A signed request for `key` (nil: the bucket itself).
    func request(
        _ method: HTTPMethod, _ key: ObjectKey?, query: [(String, String)] = [], headers extra: [(String, String)] = [], body: [UInt8] = []
    ) -> HTTPClientRequest {
        let (hostHeader, path) = location(key)
        var signed = [("host", hostHeader)] + extra
        signed += signer.sign(
            method: method.rawValue, path: path, query: query, headers: signed, payloadHash: SigV4.payloadHash(body), date: Date())
        let queryString = query.isEmpty ? "" : "?" + SigV4.canonicalQuery(query)
        // Path-style connects to the endpoint; virtual-host names the bucket in the host.
        let connectHost = configuration.addressing == .path ? host : "\(configuration.bucket).\(host)"
        var request = HTTPClientRequest(url: "\(scheme)://\(connectHost)\(port.map { ":\($0)" } ?? "")\(path)\(queryString)")
        request.method = method
        for (name, value) in signed where name != "host" { request.headers.add(name: name, value: value) }
        request.headers.replaceOrAdd(name: "Host", value: hostHeader)
        if !body.isEmpty || method == .PUT || method == .POST {
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        return request
    }

    /// Sends a signed request and collects its answer; a status outside `expect` throws.
    func send(
        _ method: HTTPMethod, _ key: ObjectKey?, query: [(String, String)] = [], headers extra: [(String, String)] = [],
        body: [UInt8] = [], expect: Set<Int> = [200]
    ) async throws -> Reply {
        let response = try await client.execute(request(method, key, query: query, headers: extra, body: body), timeout: .seconds(60))
        let buffer = try await response.body.collect(upTo: 256 << 20)
        let reply = Reply(status: Int(response.status.code), headers: response.headers, body: Array(buffer.readableBytesView))
        guard expect.contains(reply.status) else { throw failure(method, key, status: reply.status, text: reply.text) }
        return reply
    }

    /// What an unexpected answer means: no such object (a 404 for a key, except on DELETE), or
    /// S3's error code and message.
    func failure(_ method: HTTPMethod, _ key: ObjectKey?, status: Int, text: String) -> StoreError {
        if status == 404 && method != .DELETE, let key { return .notFound(key.value) }
        let code = XMLText.first("Code", in: text) ?? "HTTP \(status)"
        let message = XMLText.first("Message", in: text) ?? ""
        return .backend("S3 \(method.rawValue) \(location(key).path): \(code) \(message)".trimmingCharacters(in: .whitespaces))
    }

    /// Creates the bucket (tests, first deployment); an existing bucket of ours is fine.
    public func createBucket() async throws {
        let body =
            configuration.region == "us-east-1"
            ? [] : Array("<CreateBucketConfiguration><LocationConstraint>\(configuration.region)</LocationConstraint></CreateBucketConfiguration>".utf8)
        _ = try await send(.PUT, nil, body: body, expect: [200, 409])
    }

    // MARK: - ObjectStore

    public func put(_ key: ObjectKey, bytes: [UInt8], contentType: String?) async throws {
        _ = try await send(.PUT, key, headers: contentType.map { [("content-type", $0)] } ?? [], body: bytes)
    }

    public func put(_ key: ObjectKey, file path: String, contentType: String?) async throws {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw StoreError.backend("cannot open \(path)") }
        defer { try? handle.close() }
        let size = Int((try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0)
        if size < configuration.multipartThreshold {
            try await put(key, bytes: [UInt8](handle.readDataToEndOfFile()), contentType: contentType)
            return
        }
        let created = try await send(.POST, key, query: [("uploads", "")], headers: contentType.map { [("content-type", $0)] } ?? [])
        guard let uploadID = XMLText.first("UploadId", in: created.text) else { throw StoreError.backend("S3 gave no UploadId") }
        do {
            var parts: [(Int, String)] = []
            var number = 1
            while true {
                let chunk = [UInt8](handle.readData(ofLength: configuration.partSize))
                if chunk.isEmpty { break }
                let reply = try await send(.PUT, key, query: [("partNumber", String(number)), ("uploadId", uploadID)], body: chunk)
                guard let etag = reply.headers.first(name: "ETag") else { throw StoreError.backend("S3 part \(number) has no ETag") }
                parts.append((number, etag))
                number += 1
            }
            let manifest =
                "<CompleteMultipartUpload>"
                + parts.map { "<Part><PartNumber>\($0.0)</PartNumber><ETag>\(XMLText.escape($0.1))</ETag></Part>" }.joined()
                + "</CompleteMultipartUpload>"
            let completed = try await send(.POST, key, query: [("uploadId", uploadID)], body: Array(manifest.utf8))
            // S3 can answer 200 with an error document when completion fails late.
            if let code = XMLText.first("Code", in: completed.text), completed.text.contains("<Error>") {
                throw StoreError.backend("S3 multipart completion failed: \(code)")
            }
        } catch {
            _ = try? await send(.DELETE, key, query: [("uploadId", uploadID)], expect: [204, 200, 404])
            throw error
        }
    }

    public func get(_ key: ObjectKey, range: ClosedRange<Int>?) async throws -> [UInt8] {
        var headers: [(String, String)] = []
        if let range {
            guard range.lowerBound >= 0 else { throw StoreError.invalidRange("\(range)") }
            headers.append(("range", "bytes=\(range.lowerBound)-\(range.upperBound)"))
        }
        do {
            return try await send(.GET, key, headers: headers, expect: [200, 206]).body
        } catch StoreError.backend(let message) where message.contains("InvalidRange") {
            throw StoreError.invalidRange("\(range.map { "\($0)" } ?? "") is outside the object \(key)")
        }
    }

    public func download(_ key: ObjectKey, toFile path: String) async throws -> ObjectInfo {
        let response = try await client.execute(request(.GET, key), timeout: .seconds(60))
        guard response.status == .ok else {
            let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
            throw failure(.GET, key, status: Int(response.status.code), text: text)
        }
        let expected = response.headers.first(name: "Content-Length").flatMap { Int($0) }
        let modified = response.headers.first(name: "Last-Modified").flatMap(Self.httpDate)
        var received = 0
        try await PartialFile.writing(path, modified: modified) { file in
            for try await chunk in response.body {
                try chunk.withUnsafeReadableBytes { try file.write($0) }
                received += chunk.readableBytes
            }
            if let expected, expected != received {
                throw StoreError.backend("S3 GET \(location(key).path) ended after \(received) of \(expected) bytes")
            }
        }
        return ObjectInfo(key: key.value, size: received, modified: modified)
    }

    public func head(_ key: ObjectKey) async throws -> ObjectInfo? {
        do {
            let reply = try await send(.HEAD, key)
            let size = Int(reply.headers.first(name: "Content-Length") ?? "") ?? 0
            let modified = reply.headers.first(name: "Last-Modified").flatMap(Self.httpDate)
            return ObjectInfo(key: key.value, size: size, modified: modified)
        } catch StoreError.notFound {
            return nil
        }
    }

    public func list(prefix: String) async throws -> [ObjectInfo] {
        var found: [ObjectInfo] = []
        var token: String?
        repeat {
            var query = [("list-type", "2"), ("prefix", prefix), ("max-keys", String(configuration.listPageSize))]
            if let token { query.append(("continuation-token", token)) }
            let reply = try await send(.GET, nil, query: query)
            for contents in XMLText.all("Contents", in: reply.text) {
                guard let key = XMLText.first("Key", in: contents) else { continue }
                let size = Int(XMLText.first("Size", in: contents) ?? "") ?? 0
                let modified = XMLText.first("LastModified", in: contents).flatMap { try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse($0) }
                found.append(ObjectInfo(key: key, size: size, modified: modified))
            }
            token = XMLText.first("IsTruncated", in: reply.text) == "true" ? XMLText.first("NextContinuationToken", in: reply.text) : nil
        } while token != nil
        return found
    }

    public func delete(_ key: ObjectKey) async throws {
        _ = try await send(.DELETE, key, expect: [200, 204, 404])
    }

    static func httpDate(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: text)
    }
}

/// The little XML S3 answers with: element text by tag name, with the five predefined entities.
enum XMLText {
    static func first(_ tag: String, in xml: String) -> String? { all(tag, in: xml).first.map(unescape) }

    /// The raw inner text of every `<tag>…</tag>` (not nested in itself).
    static func all(_ tag: String, in xml: String) -> [String] {
        var results: [String] = []
        var rest = xml[...]
        while let open = rest.range(of: "<\(tag)>"), let close = rest[open.upperBound...].range(of: "</\(tag)>") {
            results.append(String(rest[open.upperBound..<close.lowerBound]))
            rest = rest[close.upperBound...]
        }
        return results
    }

    static func unescape(_ text: String) -> String {
        text.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
            .replacingOccurrences(of: "&#34;", with: "\"").replacingOccurrences(of: "&amp;", with: "&")
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
