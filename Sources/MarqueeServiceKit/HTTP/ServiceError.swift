import Foundation
import HTTPTypes
import Hummingbird

/// An error a service answers with: an HTTP status and an RFC 9457 `application/problem+json`
/// body whose `detail` says what was wrong, and for invalid input, which fields and why.
public struct ServiceError: HTTPResponseError, CustomStringConvertible {
    public let status: HTTPResponse.Status
    public let detail: String
    /// A URI naming the problem kind; `about:blank` means "see the status".
    public var type: String
    /// Per-field reasons for a 400/422.
    public var fields: [FieldProblem]
    /// Extra response headers (`Retry-After`, `WWW-Authenticate`).
    public var headers: HTTPFields

    public struct FieldProblem: Codable, Sendable, Equatable {
        public let field: String
        public let reason: String
        public init(field: String, reason: String) {
            self.field = field
            self.reason = reason
        }
    }

    public init(
        _ status: HTTPResponse.Status, _ detail: String, type: String = "about:blank", fields: [FieldProblem] = [],
        headers: HTTPFields = [:]
    ) {
        self.status = status
        self.detail = detail
        self.type = type
        self.fields = fields
        self.headers = headers
    }

    public var description: String { "\(status.code) \(detail)" }

    /// One invalid field: 422 naming it.
    public static func invalid(_ field: String, _ reason: String) -> ServiceError {
        ServiceError(.unprocessableContent, "\(field): \(reason)", fields: [FieldProblem(field: field, reason: reason)])
    }

    public static func badRequest(_ detail: String) -> ServiceError { ServiceError(.badRequest, detail) }
    public static func notFound(_ detail: String) -> ServiceError { ServiceError(.notFound, detail) }
    public static func conflict(_ detail: String) -> ServiceError { ServiceError(.conflict, detail) }
    public static func forbidden(_ detail: String) -> ServiceError { ServiceError(.forbidden, detail) }

    /// 401 with the challenge RFC 6750 asks for.
    public static func unauthorized(_ detail: String, error: String = "invalid_token") -> ServiceError {
        var headers = HTTPFields()
        headers[.wwwAuthenticate] = "Bearer error=\"\(error)\", error_description=\"\(detail.replacingOccurrences(of: "\"", with: "'"))\""
        return ServiceError(.unauthorized, detail, headers: headers)
    }

    public static func tooManyRequests(_ detail: String, retryAfterSeconds: Int) -> ServiceError {
        var headers = HTTPFields()
        headers[.retryAfter] = String(max(1, retryAfterSeconds))
        return ServiceError(.tooManyRequests, detail, headers: headers)
    }

    struct Body: Encodable {
        let type: String
        let title: String
        let status: Int
        let detail: String
        let errors: [FieldProblem]?
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let body = Body(
            type: type, title: status.reasonPhrase, status: status.code, detail: detail, errors: fields.isEmpty ? nil : fields)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(body)
        var headers = self.headers
        headers[.contentType] = "application/problem+json"
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
