import Foundation
import MarqueeServiceKit

/// A field of a PATCH body: absent (leave it), null (clear it), or a value.
enum Patch<Value: Decodable & Sendable>: Sendable {
    case absent
    case null
    case value(Value)

    var value: Value? {
        if case .value(let v) = self { return v }
        return nil
    }
}

extension KeyedDecodingContainer {
    func patch<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> Patch<T> {
        guard contains(key) else { return .absent }
        if try decodeNil(forKey: key) { return .null }
        do {
            return .value(try decode(T.self, forKey: key))
        } catch let error as DecodingError {
            throw error
        } catch {
            // Foundation reports a number that does not fit (1.5 for an integer) with its own error
            // type and, in the end, no field; name the field here.
            throw DecodingError.typeMismatch(T.self, .init(codingPath: codingPath + [key], debugDescription: "\(error)"))
        }
    }
}

/// The body of `POST /titles` and `PATCH /titles/{id}`. Create needs name, price_per_minute and
/// currency; PATCH takes any subset, and null clears an optional field.
struct TitleInput: Decodable, Sendable {
    var name: Patch<String>
    var description: Patch<String>
    var genres: Patch<[String]>
    var cast: Patch<[String]>
    var year: Patch<Int>
    var duration_seconds: Patch<Int>
    var price_per_minute: Patch<Int64>
    var currency: Patch<String>
    var geo: Patch<GeoRules>
    var available_from: Patch<String>
    var available_until: Patch<String>

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, description, genres, cast, year, duration_seconds, price_per_minute, currency, geo, available_from, available_until
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.patch(String.self, forKey: .name)
        description = try c.patch(String.self, forKey: .description)
        genres = try c.patch([String].self, forKey: .genres)
        cast = try c.patch([String].self, forKey: .cast)
        year = try c.patch(Int.self, forKey: .year)
        duration_seconds = try c.patch(Int.self, forKey: .duration_seconds)
        price_per_minute = try c.patch(Int64.self, forKey: .price_per_minute)
        currency = try c.patch(String.self, forKey: .currency)
        geo = try c.patch(GeoRules.self, forKey: .geo)
        available_from = try c.patch(String.self, forKey: .available_from)
        available_until = try c.patch(String.self, forKey: .available_until)
    }

    /// Applies the input to `title` (a blank one for create), validating every field it touches
    /// and the result as a whole. Throws 422 naming the first bad field.
    func apply(to title: inout TitleRecord, creating: Bool) throws(ServiceError) {
        if creating {
            for (field, missing) in [("name", name.value == nil), ("price_per_minute", price_per_minute.value == nil), ("currency", currency.value == nil)]
            where missing {
                throw .invalid(field, "is required")
            }
        }
        switch name {
        case .absent: break
        case .null: throw .invalid("name", "cannot be null")
        case .value(let v):
            let trimmed = v.trimmingCharacters(in: .whitespacesAndNewlines)
            guard (1...200).contains(trimmed.count) else { throw .invalid("name", "must be 1 to 200 characters") }
            title.name = trimmed
        }
        switch description {
        case .absent: break
        case .null: title.description = ""
        case .value(let v):
            guard v.count <= 5000 else { throw .invalid("description", "must be at most 5000 characters") }
            title.description = v
        }
        switch genres {
        case .absent: break
        case .null: title.genres = []
        case .value(let list):
            guard list.count <= 10 else { throw .invalid("genres", "at most 10 genres") }
            var seen: [String] = []
            for (i, raw) in list.enumerated() {
                let genre = raw.trimmingCharacters(in: .whitespaces).lowercased()
                guard (1...40).contains(genre.count), genre.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == " " }) else {
                    throw .invalid("genres[\(i)]", "must be 1 to 40 letters, digits, spaces or hyphens")
                }
                if !seen.contains(genre) { seen.append(genre) }
            }
            title.genres = seen
        }
        switch cast {
        case .absent: break
        case .null: title.cast = []
        case .value(let list):
            guard list.count <= 50 else { throw .invalid("cast", "at most 50 names") }
            for (i, name) in list.enumerated() where !(1...100).contains(name.trimmingCharacters(in: .whitespaces).count) {
                throw .invalid("cast[\(i)]", "must be 1 to 100 characters")
            }
            title.cast = list.map { $0.trimmingCharacters(in: .whitespaces) }
        }
        switch year {
        case .absent: break
        case .null: title.year = nil
        case .value(let v):
            guard (1870...2100).contains(v) else { throw .invalid("year", "must be between 1870 and 2100") }
            title.year = v
        }
        switch duration_seconds {
        case .absent: break
        case .null: title.durationSeconds = nil
        case .value(let v):
            guard (1...(7 * 24 * 3600)).contains(v) else { throw .invalid("duration_seconds", "must be between 1 and 604800") }
            title.durationSeconds = v
        }
        switch price_per_minute {
        case .absent: break
        case .null: throw .invalid("price_per_minute", "cannot be null (use 0 for free)")
        case .value(let v):
            guard (0...1_000_000_000).contains(v) else {
                throw .invalid("price_per_minute", "must be an integer number of minor units from 0 to 1000000000")
            }
            title.pricePerMinute = v
        }
        switch currency {
        case .absent: break
        case .null: throw .invalid("currency", "cannot be null")
        case .value(let v):
            guard Currency.isISO4217(v) else { throw .invalid("currency", "must be an ISO 4217 code such as EUR or USD") }
            title.currency = v
        }
        switch geo {
        case .absent: break
        case .null: title.geo = nil
        case .value(let rules):
            guard rules.countries.count <= 250 else { throw .invalid("geo.countries", "at most 250 countries") }
            var countries: [String] = []
            for (i, code) in rules.countries.enumerated() {
                guard code.utf8.count == 2, code.utf8.allSatisfy({ (65...90).contains($0) }) else {
                    throw .invalid("geo.countries[\(i)]", "must be an ISO 3166-1 alpha-2 code in capitals, such as GB")
                }
                if !countries.contains(code) { countries.append(code) }
            }
            if rules.mode == .allow && countries.isEmpty {
                throw .invalid("geo.countries", "an allow list needs at least one country")
            }
            title.geo = GeoRules(mode: rules.mode, countries: countries.sorted())
        }
        title.availableFrom = try time(available_from, "available_from", current: title.availableFrom)
        title.availableUntil = try time(available_until, "available_until", current: title.availableUntil)
        if let from = title.availableFrom, let until = title.availableUntil, until <= from {
            throw .invalid("available_until", "must be later than available_from")
        }
    }

    private func time(_ patch: Patch<String>, _ field: String, current: Int64?) throws(ServiceError) -> Int64? {
        switch patch {
        case .absent: return current
        case .null: return nil
        case .value(let text):
            guard let ms = parseRFC3339(text) else { throw .invalid(field, "must be an RFC 3339 time such as 2026-12-01T00:00:00Z") }
            return ms
        }
    }
}

enum Currency {
    /// Active ISO 4217 codes (2024), so a typo such as `EUO` is caught at the edge.
    static let codes: Set<String> = Set(
        """
        AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD CAD CDF CHF CLP CNY
        COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR
        IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR
        MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD
        SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG
        XOF XPF YER ZAR ZMW ZWG
        """.split(whereSeparator: \.isWhitespace).map(String.init))

    static func isISO4217(_ code: String) -> Bool { codes.contains(code) }
}
