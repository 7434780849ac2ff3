import Foundation

/// Opens the store a location names:
/// - a folder: `/srv/marquee/media`, `var/media` or `file:///srv/marquee/media`;
/// - an S3 bucket: `s3://BUCKET?endpoint=https://s3.eu-west-1.amazonaws.com&region=eu-west-1[&addressing=path|virtual-host]`,
///   credentials from `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
public enum StoreLocation {
    public static func open(_ location: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> any ObjectStore {
        if location.hasPrefix("s3://") {
            guard let parts = URLComponents(string: location), let bucket = parts.host, !bucket.isEmpty else {
                throw StoreError.backend("an S3 store is s3://BUCKET?endpoint=URL&region=REGION, got \(location)")
            }
            var query: [String: String] = [:]
            for item in parts.queryItems ?? [] { query[item.name] = item.value }
            let region = query["region"] ?? "us-east-1"
            let endpoint = query["endpoint"] ?? "https://s3.\(region).amazonaws.com"
            guard let access = environment["AWS_ACCESS_KEY_ID"], let secret = environment["AWS_SECRET_ACCESS_KEY"] else {
                throw StoreError.backend("an S3 store needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment")
            }
            guard let addressing = S3Store.Addressing(rawValue: query["addressing"] ?? "path") else {
                throw StoreError.backend("addressing must be path or virtual-host")
            }
            return try S3Store(.init(endpoint: endpoint, region: region, bucket: bucket, accessKey: access, secretKey: secret, addressing: addressing))
        }
        let path = location.hasPrefix("file://") ? String(location.dropFirst("file://".count)) : location
        guard !path.isEmpty else { throw StoreError.backend("the store location is empty") }
        return try FileSystemStore(root: path)
    }
}
