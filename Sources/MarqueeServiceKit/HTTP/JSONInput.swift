import Foundation
import HTTPTypes
import Hummingbird

/// Reads a JSON request body into `T`, turning every way it can be wrong into a 4xx that names
/// the field: not JSON (400), a missing field or a wrong type (422 naming its coding path), a body
/// over `maxBytes` (413), a wrong media type (415).
public func decodeJSON<T: Decodable>(_ type: T.Type, from request: Request, maxBytes: Int = 64 * 1024) async throws -> T {
    if let contentType = request.headers[.contentType], !contentType.lowercased().hasPrefix("application/json") {
        throw ServiceError(.unsupportedMediaType, "send the body as application/json, not \(contentType)")
    }
    let buffer: ByteBuffer
    do {
        buffer = try await request.body.collect(upTo: maxBytes)
    } catch {
        throw ServiceError(.contentTooLarge, "the request body is larger than \(maxBytes) bytes")
    }
    guard buffer.readableBytes > 0 else { throw ServiceError.badRequest("the request needs a JSON body") }
    do {
        return try JSONDecoder().decode(T.self, from: Data(buffer.readableBytesView))
    } catch let DecodingError.keyNotFound(key, context) {
        throw ServiceError.invalid(path(context.codingPath + [key]), "is required")
    } catch let DecodingError.typeMismatch(expected, context) {
        throw ServiceError.invalid(path(context.codingPath), "must be \(describe(expected))")
    } catch let DecodingError.valueNotFound(expected, context) {
        throw ServiceError.invalid(path(context.codingPath), "must be \(describe(expected)), not null")
    } catch let DecodingError.dataCorrupted(context) where !context.codingPath.isEmpty {
        throw ServiceError.invalid(path(context.codingPath), context.debugDescription)
    } catch let error as ServiceError {
        throw error
    } catch {
        throw ServiceError.badRequest("the body is not valid JSON")
    }
}

func path(_ codingPath: [any CodingKey]) -> String {
    var out = ""
    for key in codingPath {
        if let index = key.intValue {
            out += "[\(index)]"
        } else {
            out += out.isEmpty ? key.stringValue : ".\(key.stringValue)"
        }
    }
    return out.isEmpty ? "body" : out
}

func describe(_ type: Any.Type) -> String {
    if type == String.self { return "a string" }
    if type == Int.self || type == Int64.self { return "an integer" }
    if type == Bool.self { return "true or false" }
    if type == Double.self { return "a number" }
    let name = String(describing: type)
    if name.hasPrefix("Array") { return "an array" }
    if name.hasPrefix("Dictionary") { return "an object" }
    return "a valid \(name)"
}

/// Encodes `value` as a JSON response with `status`.
public func jsonResponse<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) throws -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    var headers = headers
    headers[.contentType] = "application/json"
    if headers[.cacheControl] == nil { headers[.cacheControl] = "no-store" }
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
}
