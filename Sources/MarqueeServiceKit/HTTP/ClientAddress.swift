import Foundation
import HTTPTypes
import Hummingbird

/// The address of the client behind the request: the TCP peer, or, when the peer is a trusted
/// proxy (the gateway), the rightmost `X-Forwarded-For` hop that is not itself trusted.
public func clientAddress(_ request: Request, _ context: ServiceRequestContext, trustedProxies: Set<String>) -> String? {
    guard let peer = context.peer else { return nil }
    let field = HTTPField.Name("X-Forwarded-For")!
    let values = request.headers[values: field]
    guard trustedProxies.contains(peer), !values.isEmpty else { return peer }
    let hops = values.joined(separator: ",").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    for hop in hops.reversed() where !trustedProxies.contains(hop) {
        return hop.isEmpty ? peer : hop
    }
    return peer
}
