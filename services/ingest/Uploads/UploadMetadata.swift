import Foundation
import HTTPTypes
import MarqueeServiceKit

/// The `Upload-Metadata` header of a tus creation request: comma-separated `key base64value`
/// pairs. We require `title_id` (the catalog title the source belongs to) and accept `filename`.
/// Anything malformed is a 400 that names the key, before anything is created.
struct UploadMetadata: Sendable, Equatable {
    var titleID: String
    var filename: String?

    /// Longer headers are refused: metadata names a title and a file, nothing more.
    static let maxHeaderBytes = 4096
    static let maxFilenameBytes = 255

    init(titleID: String, filename: String? = nil) {
        self.titleID = titleID
        self.filename = filename
    }

    init(parsing header: String?) throws(ServiceError) {
        guard let header, !header.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw Self.problem("title_id", "is required: send Upload-Metadata: title_id <base64 of the title id>")
        }
        guard header.utf8.count <= Self.maxHeaderBytes else {
            throw Self.problem("Upload-Metadata", "is \(header.utf8.count) bytes; at most \(Self.maxHeaderBytes) are accepted")
        }
        var values: [String: String] = [:]
        for pair in header.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = pair.trimmingCharacters(in: .whitespaces).split(separator: " ", omittingEmptySubsequences: false)
            guard (1...2).contains(parts.count), let key = parts.first, !key.isEmpty,
                key.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
            else {
                throw Self.problem("Upload-Metadata", "each pair must be 'key base64value' with a non-empty ASCII key")
            }
            let name = String(key)
            guard values[name] == nil else { throw Self.problem(name, "appears twice") }
            guard parts.count == 2 else {
                values[name] = ""
                continue
            }
            guard let data = Data(base64Encoded: String(parts[1])), let text = String(data: data, encoding: .utf8) else {
                throw Self.problem(name, "is not base64 of UTF-8 text")
            }
            values[name] = text
        }
        guard let titleID = values["title_id"], !titleID.isEmpty else {
            throw Self.problem("title_id", "is required: send Upload-Metadata: title_id <base64 of the title id>")
        }
        guard Identifier.isValid(titleID) else { throw Self.problem("title_id", "must be a catalog title id (26 characters)") }
        self.titleID = titleID
        if let filename = values["filename"], !filename.isEmpty {
            guard filename.utf8.count <= Self.maxFilenameBytes else {
                throw Self.problem("filename", "must be at most \(Self.maxFilenameBytes) bytes")
            }
            guard !filename.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw Self.problem("filename", "must not contain control characters")
            }
            self.filename = filename
        }
    }

    static func problem(_ field: String, _ reason: String) -> ServiceError {
        ServiceError(
            .badRequest, "Upload-Metadata \(field): \(reason)",
            fields: [ServiceError.FieldProblem(field: field == "Upload-Metadata" ? field : "Upload-Metadata.\(field)", reason: reason)])
    }
}
