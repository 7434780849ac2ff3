/// Why a request was refused, with the text and metric label the gateway needs to answer and
/// count it without allocating.
public struct GeoDenial: Hashable, Sendable {
    /// The rule that refused the request.
    public enum Reason: Hashable, Sendable, CaseIterable {
        /// The path has an allow-list and the country is not on it.
        case countryNotAllowed
        /// The path has a deny-list and the country is on it.
        case countryDenied
        /// The path refuses anonymizing networks and the address belongs to one.
        case anonymousNetwork
        /// An override refuses the address block.
        case addressDenied
        /// The database does not know the address and the policy refuses unknown countries.
        case unknownCountry
    }

    /// The rule that refused the request.
    public var reason: Reason
    /// The client's country as the decision saw it; `unknown` when there was none.
    public var country: CountryCode

    /// A denial for `reason`.
    public init(reason: Reason, country: CountryCode) {
        self.reason = reason
        self.country = country
    }

    /// A short sentence for the response body, without the country.
    public var reasonText: StaticString {
        switch reason {
        case .countryNotAllowed, .countryDenied: "not available in your country"
        case .anonymousNetwork: "not available through anonymizing networks"
        case .addressDenied: "not available from your network"
        case .unknownCountry: "not available in your location"
        }
    }

    /// A Prometheus label value for the refusal counter.
    public var metricLabel: StaticString {
        switch reason {
        case .countryNotAllowed: "country_not_allowed"
        case .countryDenied: "country_denied"
        case .anonymousNetwork: "anonymous_network"
        case .addressDenied: "address_denied"
        case .unknownCountry: "unknown_country"
        }
    }

    /// Writes `reasonText`, followed by ` (FR)` when the country is known, into `buffer` and
    /// returns the number of bytes written; the text is cut at `capacity`. No allocation.
    public func writeMessage(into buffer: UnsafeMutableRawPointer, capacity: Int) -> Int {
        guard capacity > 0 else { return 0 }
        let text = reasonText
        var count = min(text.utf8CodeUnitCount, capacity)
        buffer.copyMemory(from: text.utf8Start, byteCount: count)
        guard country.isKnown else { return count }
        let suffix: (UInt8, UInt8, UInt8, UInt8, UInt8) = (
            0x20, 0x28, UInt8(country.rawValue >> 8), UInt8(country.rawValue & 0xFF), 0x29
        )
        withUnsafeBytes(of: suffix) { raw in
            let n = min(raw.count, capacity - count)
            buffer.advanced(by: count).copyMemory(from: raw.baseAddress!, byteCount: n)
            count += n
        }
        return count
    }
}
