import MarqueePolicy
import MarqueeTestSupport
import Testing

@Suite("Per-title access rules")
struct TitleRuleTableTests {
    let now: Int64 = 1_750_000_000

    func table() -> TitleRuleTable {
        TitleRuleTable(version: 7, rules: [
            TitleRule(id: "open", isPublished: true),
            TitleRule(id: "draft", isPublished: false),
            TitleRule(id: "later", isPublished: true, availableFrom: now + 60),
            TitleRule(id: "ended", isPublished: true, availableFrom: now - 600, availableUntil: now),
            TitleRule(id: "window", isPublished: true, availableFrom: now - 1, availableUntil: now + 1),
            TitleRule(id: "no-gb", isPublished: true, geo: .deny([CountryCode("GB")!, CountryCode("FR")!])),
            TitleRule(id: "us-only", isPublished: true, geo: .allow([CountryCode("US")!])),
        ])
    }

    @Test func decisions() {
        let t = table()
        #expect(t.decide(titleID: "open", nowSeconds: now) == .allowed)
        #expect(t.decide(titleID: "missing", nowSeconds: now) == .noSuchTitle)
        #expect(t.decide(titleID: "draft", nowSeconds: now) == .notPublished)
        #expect(t.decide(titleID: "later", nowSeconds: now) == .notYetAvailable)
        #expect(t.decide(titleID: "later", nowSeconds: now + 60) == .allowed)
        #expect(t.decide(titleID: "ended", nowSeconds: now) == .noLongerAvailable, "available_until is exclusive")
        #expect(t.decide(titleID: "window", nowSeconds: now) == .allowed)
        #expect(t.decide(titleID: "no-gb", nowSeconds: now, country: CountryCode("GB")!)
            == .geoDenied(GeoDenial(reason: .countryDenied, country: CountryCode("GB")!)))
        #expect(t.decide(titleID: "no-gb", nowSeconds: now, country: CountryCode("DE")!) == .allowed)
        #expect(t.decide(titleID: "us-only", nowSeconds: now, country: CountryCode("DE")!)
            == .geoDenied(GeoDenial(reason: .countryNotAllowed, country: CountryCode("DE")!)))
        #expect(t.decide(titleID: "us-only", nowSeconds: now, country: .unknown) == .allowed)
        #expect(t.decide(titleID: "us-only", nowSeconds: now, country: .unknown, unknownCountry: .deny)
            == .geoDenied(GeoDenial(reason: .unknownCountry, country: .unknown)))
        #expect(TitleRuleTable.notLoaded.decide(titleID: "open", nowSeconds: now) == .rulesNotLoaded)
    }

    @Test func countryIsLookedUpOnlyForTitlesWithGeoRules() {
        let t = table()
        var lookups = 0
        for id in ["open", "draft", "no-gb"] {
            var bytes = Array(id.utf8)
            _ = bytes.withUnsafeMutableBytes { raw in
                t.decide(titleID: UnsafeRawBufferPointer(raw), nowSeconds: now, unknownCountry: .allow) {
                    lookups += 1
                    return .unknown
                }
            }
        }
        #expect(lookups == 1)
    }

    @Test("Many ids, repeated ids: every lookup finds its own rule (seeded)")
    func manyTitles() {
        var random = SeededGenerator(seed: 0x5449_544C_45)
        var rules: [TitleRule] = []
        for i in 0..<5000 {
            rules.append(TitleRule(id: "t\(i)-\(random.next() % 1000)", isPublished: i % 2 == 0))
        }
        rules.append(TitleRule(id: rules[0].id, isPublished: false))  // the last rule for an id wins
        let t = TitleRuleTable(version: 1, rules: rules)
        #expect(t.count == 5000)
        #expect(t.decide(titleID: rules[0].id, nowSeconds: now) == .notPublished)
        for i in 1..<5000 {
            #expect(t.decide(titleID: rules[i].id, nowSeconds: now) == (i % 2 == 0 ? .allowed : .notPublished))
        }
        #expect(t.decide(titleID: "t-none", nowSeconds: now) == .noSuchTitle)
    }

    @Test func decodesTheCatalogDocument() throws {
        let json = """
            {"version":42,"titles":[{"id":"01hx","status":"published","geo":{"mode":"deny","countries":["GB","fr"]},"available_from":1700000000,"available_until":null},
            {"id":"02","status":"draft","geo":null}]}
            """
        let (version, rules) = try AccessRulesDocument.decode(Array(json.utf8))
        #expect(version == 42)
        #expect(rules == [
            TitleRule(id: "01hx", isPublished: true, availableFrom: 1_700_000_000, availableUntil: nil, geo: .deny([CountryCode("GB")!, CountryCode("FR")!])),
            TitleRule(id: "02", isPublished: false),
        ])
    }

    @Test("Malformed documents are refused with a reason", arguments: [
        "", "null", "[]", "{}", "{\"version\":1}", "{\"version\":\"1\",\"titles\":[]}",
        "{\"version\":1,\"titles\":[{\"status\":\"published\"}]}",
        "{\"version\":1,\"titles\":[{\"id\":\"\",\"status\":\"published\"}]}",
        "{\"version\":1,\"titles\":[{\"id\":\"a/b\",\"status\":\"published\"}]}",
        "{\"version\":1,\"titles\":[{\"id\":\"a\",\"status\":\"published\",\"geo\":{\"mode\":\"block\",\"countries\":[]}}]}",
        "{\"version\":1,\"titles\":[{\"id\":\"a\",\"status\":\"published\",\"geo\":{\"mode\":\"deny\",\"countries\":[\"GBR\"]}}]}",
        "{\"version\":1,\"titles\":[{\"id\":\"a\",\"status\":\"published\",\"available_from\":\"soon\"}]}",
        "{\"version\":1,\"titles\":[{\"id\":\"a\",\"status\":\"published\",\"available_from\":1e400}]}",
        "{\"version\":1,\"titles\":[",
    ])
    func refusesMalformed(_ json: String) {
        #expect(throws: AccessRulesDocument.Invalid.self) { try AccessRulesDocument.decode(Array(json.utf8)) }
    }

    @Test("Random and mutated documents never crash the decoder (seeded)")
    func survivesGarbage() {
        var random = SeededGenerator(seed: 0x4A53_4F4E)
        let valid = Array(#"{"version":3,"titles":[{"id":"x","status":"published","geo":{"mode":"allow","countries":["US"]},"available_from":null,"available_until":5}]}"#.utf8)
        for _ in 0..<500 {
            var bytes = valid
            for _ in 0..<Int.random(in: 1...5, using: &random) {
                let at = Int.random(in: 0..<bytes.count, using: &random)
                bytes[at] = UInt8.random(in: 0...255, using: &random)
            }
            if let (_, rules) = try? AccessRulesDocument.decode(bytes) {
                #expect(rules.count <= 1)
            }
        }
    }
}
