/// The response statuses the gateway speaks, with their reason phrases as static text so a status
/// line is written without building a String.
public enum HTTPStatus: UInt16, Sendable {
    case ok = 200
    case noContent = 204
    case partialContent = 206
    case notModified = 304
    case permanentRedirect = 308
    case badRequest = 400
    case unauthorized = 401
    case paymentRequired = 402
    case forbidden = 403
    case notFound = 404
    case methodNotAllowed = 405
    case requestTimeout = 408
    case gone = 410
    case preconditionFailed = 412
    case uriTooLong = 414
    case rangeNotSatisfiable = 416
    case tooManyRequests = 429
    case payloadTooLarge = 413
    case requestHeaderFieldsTooLarge = 431
    case unavailableForLegalReasons = 451
    case internalServerError = 500
    case notImplemented = 501
    case badGateway = 502
    case serviceUnavailable = 503
    case gatewayTimeout = 504
    case httpVersionNotSupported = 505

    /// The whole status line, CRLF included.
    public var statusLine: StaticString {
        switch self {
        case .ok: "HTTP/1.1 200 OK\r\n"
        case .noContent: "HTTP/1.1 204 No Content\r\n"
        case .partialContent: "HTTP/1.1 206 Partial Content\r\n"
        case .notModified: "HTTP/1.1 304 Not Modified\r\n"
        case .permanentRedirect: "HTTP/1.1 308 Permanent Redirect\r\n"
        case .badRequest: "HTTP/1.1 400 Bad Request\r\n"
        case .unauthorized: "HTTP/1.1 401 Unauthorized\r\n"
        case .paymentRequired: "HTTP/1.1 402 Payment Required\r\n"
        case .forbidden: "HTTP/1.1 403 Forbidden\r\n"
        case .notFound: "HTTP/1.1 404 Not Found\r\n"
        case .methodNotAllowed: "HTTP/1.1 405 Method Not Allowed\r\n"
        case .requestTimeout: "HTTP/1.1 408 Request Timeout\r\n"
        case .gone: "HTTP/1.1 410 Gone\r\n"
        case .preconditionFailed: "HTTP/1.1 412 Precondition Failed\r\n"
        case .uriTooLong: "HTTP/1.1 414 URI Too Long\r\n"
        case .rangeNotSatisfiable: "HTTP/1.1 416 Range Not Satisfiable\r\n"
        case .tooManyRequests: "HTTP/1.1 429 Too Many Requests\r\n"
        case .payloadTooLarge: "HTTP/1.1 413 Content Too Large\r\n"
        case .requestHeaderFieldsTooLarge: "HTTP/1.1 431 Request Header Fields Too Large\r\n"
        case .unavailableForLegalReasons: "HTTP/1.1 451 Unavailable For Legal Reasons\r\n"
        case .internalServerError: "HTTP/1.1 500 Internal Server Error\r\n"
        case .notImplemented: "HTTP/1.1 501 Not Implemented\r\n"
        case .badGateway: "HTTP/1.1 502 Bad Gateway\r\n"
        case .gatewayTimeout: "HTTP/1.1 504 Gateway Timeout\r\n"
        case .serviceUnavailable: "HTTP/1.1 503 Service Unavailable\r\n"
        case .httpVersionNotSupported: "HTTP/1.1 505 HTTP Version Not Supported\r\n"
        }
    }

    /// A dense index for per-status counters.
    public var counterIndex: Int {
        switch self {
        case .ok: 0
        case .noContent: 1
        case .partialContent: 2
        case .notModified: 3
        case .badRequest: 4
        case .forbidden: 5
        case .notFound: 6
        case .methodNotAllowed: 7
        case .requestTimeout: 8
        case .preconditionFailed: 9
        case .uriTooLong: 10
        case .rangeNotSatisfiable: 11
        case .requestHeaderFieldsTooLarge: 12
        case .internalServerError: 13
        case .notImplemented: 14
        case .serviceUnavailable: 15
        case .httpVersionNotSupported: 16
        case .paymentRequired: 17
        case .gone: 18
        case .tooManyRequests: 19
        case .unavailableForLegalReasons: 20
        case .payloadTooLarge: 21
        case .badGateway: 22
        case .gatewayTimeout: 23
        case .unauthorized: 24
        case .permanentRedirect: 25
        }
    }

    /// Every status, in `counterIndex` order.
    public static let all: [HTTPStatus] = [
        .ok,
        .noContent,
        .partialContent,
        .notModified,
        .badRequest,
        .forbidden,
        .notFound,
        .methodNotAllowed,
        .requestTimeout,
        .preconditionFailed,
        .uriTooLong,
        .rangeNotSatisfiable,
        .requestHeaderFieldsTooLarge,
        .internalServerError,
        .notImplemented,
        .serviceUnavailable,
        .httpVersionNotSupported,
        .paymentRequired,
        .gone,
        .tooManyRequests,
        .unavailableForLegalReasons,
        .payloadTooLarge,
        .badGateway,
        .gatewayTimeout,
        .unauthorized,
        .permanentRedirect,
    ]
}

/// Why a request was refused: the status and a short body that says what was wrong.
public struct HTTPError: Sendable, Equatable {
    public var status: HTTPStatus
    public var reason: StaticString

    public init(_ status: HTTPStatus, _ reason: StaticString) {
        self.status = status
        self.reason = reason
    }

    public static func == (lhs: HTTPError, rhs: HTTPError) -> Bool {
        lhs.status == rhs.status && lhs.reason.utf8Start == rhs.reason.utf8Start
    }
}
