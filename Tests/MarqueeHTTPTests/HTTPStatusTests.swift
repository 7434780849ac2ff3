import MarqueeHTTP
import Testing

@Suite("HTTPStatus")
struct HTTPStatusTests {
    @Test(arguments: HTTPStatus.all)
    func statusLinesAreWellFormed(status: HTTPStatus) {
        let line = status.statusLine.description
        #expect(line.hasPrefix("HTTP/1.1 \(status.rawValue) "))
        #expect(line.hasSuffix("\r\n"))
        #expect(line.utf8.count > "HTTP/1.1 200 \r\n".utf8.count, "a reason phrase follows the code")
        #expect(!line.dropLast(2).contains("\r") && !line.dropLast(2).contains("\n"))
    }

    @Test func counterIndicesAreDenseAndMatchTheListOrder() {
        #expect(HTTPStatus.all.enumerated().allSatisfy { $0.offset == $0.element.counterIndex })
        #expect(Set(HTTPStatus.all.map(\.rawValue)).count == HTTPStatus.all.count)
    }

    @Test func errorsCompareByStatusAndReason() {
        let reason: StaticString = "x"
        #expect(HTTPError(.badRequest, reason) == HTTPError(.badRequest, reason))
        #expect(HTTPError(.badRequest, reason) != HTTPError(.notFound, reason))
    }
}
