import Foundation
import HTTPTypes
import Hummingbird

/// Reads a JSON request body into `T`, turning every way it can be wrong into a 4xx that names
/// the field: not JSON (400), a missing field or a wrong type (422 naming its coding path), a body
/// over `maxBytes` (413), a wrong media type (415).
public func decodeJSON<T: Decodable>(_ type: T.Type, from request: Request, maxBytes: Int = 64 * 1024) async throws -> T {
    try decodeJSON(T.self, from: try await jsonBody(of: request, maxBytes: maxBytes).data)
}

/// The bytes of a request body sent as one of `mediaTypes` (a missing `Content-Type` counts as
/// the first), and which one it was (lowercased, without parameters such as `charset`).
/// - Throws: `ServiceError` 415 for another media type, 413 past `maxBytes`, 400 for an empty body.
public func jsonBody(of request: Request, accepting mediaTypes: [String] = ["application/json"], maxBytes: Int = 64 * 1024) async throws
    -> (mediaType: String, data: Data)
{
    var mediaType = mediaTypes[0]
    if let contentType = request.headers[.contentType] {
        let essence = contentType.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false)[0]
        mediaType = essence.trimmingCharacters(in: .whitespaces).lowercased()
        guard mediaTypes.contains(mediaType) else {
            throw ServiceError(.unsupportedMediaType, "send the body as \(mediaTypes.joined(separator: " or ")), not \(contentType)")
        }
    }
    let buffer: ByteBuffer
    do {
        buffer = try await request.body.collect(upTo: maxBytes)
    } catch {
        throw ServiceError(.contentTooLarge, "the request body is larger than \(maxBytes) bytes")
    }
    guard buffer.readableBytes > 0 else { throw ServiceError.badRequest("the request needs a JSON body") }
    return (mediaType, Data(buffer.readableBytesView))
}

/// Decodes JSON `data` into `T`, with the refusals of `decodeJSON(_:from:maxBytes:)`.
public func decodeJSON<T: Decodable>(_ type: T.Type, from data: Data) throws(ServiceError) -> T {
    do {
        return try JSONDecoder().decode(T.self, from: data)
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
