import CLinux
import CURing
import Glibc
import MarqueeHTTP
import MarqueePolicy
import MarqueeRing
import MarqueeTokens

/// The access policy on the request path, in the order that refuses cheapest and most certain
/// first: token (403/410), revocation (402/403), geo (451), rate limits (429, or a wait). Nothing
/// here allocates, locks or does I/O; a shared (Redis) limit parks the request and resumes it when
/// the limiter's thread answers, and a limit with a delay parks it until its turn.
extension EventLoop {
    enum Admission {
        case proceed
        /// A refusal was sent.
        case answered
        /// Waiting for the shared rate limiter or for its turn under a limit with a delay; the head
        /// is kept and parsed again when it may go on.
        case parked
    }

    /// What the request presented, located once by `serveFile`.
    struct Credentials {
        var token: UnsafeRawBufferPointer
        /// The decoded path with its leading slash, and without it (as files are looked up).
        var absolutePath: UnsafeRawBufferPointer
        var relativePath: UnsafeRawBufferPointer
        /// The session the token names (in the loop's token scratch), empty when none.
        var session = UnsafeRawBufferPointer(start: nil, count: 0)
        /// The rate-limit route class: media (files) or api (services, which check their own
        /// JWTs: no URL token is required or checked there).
        var route = RateDescriptor.Route.media
        /// The client address the policy decided on (set by `admit`).
        var client = IPAddress(high: 0, low: 0)
    }

    /// The `token` parameter of a query, as sent (never percent-decoded: another spelling is
    /// another token, and is refused).
    static func queryToken(_ query: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        var i = 0
        let n = query.count
        while i < n {
            var end = i
            while end < n && query[end] != UInt8(ascii: "&") { end += 1 }
            if end - i >= 6 && query[i] == UInt8(ascii: "t") && query[i + 1] == UInt8(ascii: "o") && query[i + 2] == UInt8(ascii: "k")
                && query[i + 3] == UInt8(ascii: "e") && query[i + 4] == UInt8(ascii: "n") && query[i + 5] == UInt8(ascii: "=")
            {
                return UnsafeRawBufferPointer(rebasing: query[(i + 6)..<end])
            }
            i = end + 1
        }
        return nil
    }

    mutating func admit(
        _ slot: Int32, _ head: RequestHead, _ buffer: UnsafeRawBufferPointer, _ credentials: inout Credentials,
        origin: UnsafeRawBufferPointer
    ) -> Admission {
        let s = Int(slot)
        credentials.client = connections[s].peer
        guard let policy else {
            return titleRules == nil || credentials.route != .media ? .proceed : admitTitle(slot, credentials, nil, origin: origin)
        }
        var client = connections[s].peer
        if !policy.trustedProxies.blocks.isEmpty {
            client = policy.trustedProxies.clientAddress(
                peer: client, forwardedFor: head.forwardedFor.bytes(in: buffer), forwarded: head.forwarded.bytes(in: buffer))
        }
        credentials.client = client
        media.client = client

        // Signed URL
        if credentials.route == .media, let keys = policy.tokenKeys {
            if credentials.token.isEmpty {
                if policy.settings.requireToken && !policy.settings.isPublic(credentials.absolutePath) {
                    metrics.countPolicy(PolicyCounter.tokenRefused(.missing))
                    respondWithError(slot, HTTPError(.forbidden, TokenRefusal.missing.reason), close: false, origin: origin)
                    return .answered
                }
            } else {
                let scratch = tokenScratch
                let token = credentials.token
                let path = credentials.relativePath
                let now = dateSecond
                let check = keys.ring.withCurrent {
                    TokenVerifier.verify(token, path: path, client: client, nowSeconds: now, keys: $0, scratch: scratch)
                }
                switch check {
                case .granted(let start, let count):
                    metrics.countPolicy(PolicyCounter.tokenGranted)
                    credentials.session = UnsafeRawBufferPointer(start: scratch + start, count: count)
                    media.session = credentials.session
                case .refused(let refusal):
                    metrics.countPolicy(PolicyCounter.tokenRefused(refusal))
                    respondWithError(slot, HTTPError(refusal.isExpiry ? .gone : .forbidden, refusal.reason), close: false, origin: origin)
                    return .answered
                }
            }
        }

        // Per-title rules from the catalog
        if titleRules != nil && credentials.route == .media && admitTitle(slot, credentials, policy, origin: origin) == .answered {
            return .answered
        }

        // Revoked sessions
        if !credentials.session.isEmpty, let reason = policy.revocations.isRevoked(credentials.session, nowSeconds: dateSecond) {
            if reason == .funds {
                metrics.countPolicy(PolicyCounter.revokedFunds)
                respondWithError(slot, HTTPError(.paymentRequired, "playback session ended: payment required"), close: false, origin: origin)
            } else {
                metrics.countPolicy(PolicyCounter.revokedOther)
                respondWithError(slot, HTTPError(.forbidden, "playback session revoked"), close: false, origin: origin)
            }
            return .answered
        }

        // Geo
        if let geoPolicy = policy.geoPolicy {
            let path = credentials.absolutePath
            let decision: GeoDecision
            if let geo = policy.geo {
                decision = geo.withDatabases { geoPolicy.evaluate(path: path, client: client, database: $0, anonymousDatabase: $1) }
            } else {
                decision = geoPolicy.evaluate(path: path, client: client, database: nil, anonymousDatabase: nil)
            }
            switch decision {
            case .allowed(let country):
                metrics.countPolicy(PolicyCounter.geoAllowed)
                if country != .unknown { media.country = country.rawValue }
            case .denied(let denial):
                media.country = denial.country.rawValue
                metrics.countPolicy(PolicyCounter.geoDenied(denial.reason))
                let length = denial.writeMessage(into: messageScratch, capacity: Self.messageScratchBytes - 1)
                messageScratch.storeBytes(of: 0x0A, toByteOffset: length, as: UInt8.self)
                respondRefusal(
                    slot, .unavailableForLegalReasons, body: UnsafeRawBufferPointer(start: messageScratch, count: length + 1),
                    origin: origin)
                return .answered
            }
        }

        // Rate limits (for services, once the body is read: `admitExchange`)
        if !policy.descriptors.isEmpty && credentials.route == .media {
            return admitRate(slot, policy, client: client, credentials, origin: origin)
        }
        return .proceed
    }

    // MARK: - Rate limits

    mutating func admitRate(_ slot: Int32, _ policy: AccessPolicy, client: IPAddress, _ credentials: Credentials, origin: UnsafeRawBufferPointer)
        -> Admission
    {
        let s = Int(slot)
        var keys = RateKeys()
        for i in 0..<policy.descriptors.count {
            let descriptor = policy.descriptors[i]
            guard descriptor.route == .any || descriptor.route == credentials.route else { continue }
            let hash: UInt64
            switch descriptor.key {
            case .client:
                hash = StableHash.hash64(client)
            case .session:
                // The session the token names; a token without one is its own session.
                if !credentials.session.isEmpty {
                    hash = StableHash.hash64(credentials.session)
                } else if !credentials.token.isEmpty {
                    hash = StableHash.hash64(credentials.token)
                } else {
                    continue
                }
            case .route:
                hash = StableHash.mix(credentials.route == .api ? 2 : 1)  // the route class as a whole
            }
            keys.append(RateKey(limitIndex: UInt8(i), keyHash: hash))
        }
        guard !keys.isEmpty else { return .proceed }

        let verdict: RateVerdict
        switch connections[s].parking.takeRateResumption() {
        case .verdict(let answered):
            // Answered while the request was parked (by the shared limiter, or its turn came).
            verdict = answered
        case .redisUnavailable:
            verdict = fallbackVerdict(policy, keys)
        case nil:
            if let redis = policy.redis, redis.isAvailable {
                let request = RedisRateRequest(loop: UInt16(id), slot: slot, generation: connections[s].generation, keys: keys)
                if redis.submit(request) {
                    connections[s].state.park()
                    connections[s].parking.park(.verdict)
                    startTimer(slot, .send)
                    return .parked
                }
                verdict = fallbackVerdict(policy, keys)
            } else if policy.redis != nil {
                verdict = fallbackVerdict(policy, keys)
            } else {
                verdict = policy.localLimiter!.check(keys, now: nowNanoseconds / 1000)
            }
        }
        return apply(verdict, slot, policy, origin: origin)
    }


    /// What the limits decide while Redis cannot: `redis.fail_mode`.
    func fallbackVerdict(_ policy: AccessPolicy, _ keys: RateKeys) -> RateVerdict {
        metrics.countPolicy(PolicyCounter.rateRedisUnavailable)
        switch policy.settings.redisFailMode {
        case .local: return policy.localLimiter!.check(keys, now: nowNanoseconds / 1000)
        case .open: return .allowed(limitIndex: keys[0].limitIndex, remaining: 0, resetMicros: 0)
        case .closed: return .limited(limitIndex: keys[0].limitIndex, retryAfterMicros: 1_000_000)
        }
    }

    mutating func apply(_ verdict: RateVerdict, _ slot: Int32, _ policy: AccessPolicy, origin: UnsafeRawBufferPointer) -> Admission {
        switch verdict {
        case .allowed(let index, let remaining, let reset):
            metrics.countPolicy(PolicyCounter.rateAllowed)
            if policy.settings.rateLimitHeaders == .always {
                connections[Int(slot)].reportedLimit = Int16(index)
                connections[Int(slot)].reportedRemaining = Int32(clamping: remaining)
                connections[Int(slot)].reportedResetMicros = reset
            }
            return .proceed
        case .delayed(let index, let wait):
            metrics.countPolicy(PolicyCounter.rateDelayed)
            pace(slot, waitMicros: wait, limitIndex: index)
            return .parked
        case .limited(let index, let retryAfter):
            metrics.countPolicy(PolicyCounter.rateLimited)
            respondRefusal(slot, .tooManyRequests, body: Self.staticBody("rate limit exceeded; retry later\n"), origin: origin) { w in
                w.append("Retry-After: ")
                w.append(decimal: Int64(max(1, RateLimit.seconds(roundingUp: retryAfter))))
                w.appendCRLF()
                Self.writeRateLimitHeaders(&w, policy, limit: Int(index), remaining: 0, resetMicros: retryAfter)
            }
            return .answered
        }
    }

    /// `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers) for one limit.
    static func writeRateLimitHeaders(_ w: inout ResponseWriter, _ policy: AccessPolicy, limit index: Int, remaining: Int, resetMicros: UInt64) {
        policy.rateLimitPolicyLines[index].withUnsafeBytes { w.append($0) }
        w.append("RateLimit: ")
        let written = policy.descriptors[index].limit.writeHeaderValue(
            remaining: remaining, resetMicros: resetMicros,
            into: UnsafeMutableRawBufferPointer(start: w.base + w.count, count: max(0, w.capacity - w.count - 2)))
        w.count += written
        w.appendCRLF()
    }

    static func staticBody(_ text: StaticString) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount)
    }

    // MARK: - Parked requests

    /// A limit with a delay queued the request (it is already charged): keep its head as for a
    /// shared verdict and resume it when its turn comes, on a ring timeout of its own. No
    /// connection timer runs meanwhile; the wait is bounded by the limit's delay (at most 60 s).
    /// Pacing instead of refusing is what bounds a fast client's lead over real time (billing's
    /// cut-off) without failing players that do not retry a 429.
    mutating func pace(_ slot: Int32, waitMicros: UInt64, limitIndex: UInt8) {
        let s = Int(slot)
        stopTimer(slot)
        connections[s].state.park()
        connections[s].parking.park(.turn)
        pacingSpecs[s] = __kernel_timespec(tv_sec: Int64(waitMicros / 1_000_000), tv_nsec: Int64(waitMicros % 1_000_000) * 1000)
        let sqe = ring.submissionEntry()
        io_uring_prep_timeout(sqe, pacingSpecs + s, 0, 0)
        io_uring_sqe_set_data64(sqe, UserData.make(.paced, slot: slot, generation: connections[s].generation, step: limitIndex))
    }


    /// An answer for a parked slot: the shared limiter's verdict, a paced request's turn, or a
    /// fetch's outcome. The request goes on with it: its head is parsed again (the policy before
    /// the rate limits, revocation included, is checked again; a fetched file is served), or its
    /// proxied exchange goes on. Answers for a slot that no longer waits for them are dropped.
    mutating func resumeParked(slot: Int32, generation: UInt16, _ answer: RequestParking.Answer) {
        let s = Int(slot)
        guard slot >= 0, s < capacity, connections[s].generation == generation, connections[s].phase == .parked else { return }
        switch connections[s].parking.deliver(answer) {
        case .ignore:
            return
        case .resumeExchange:
            stopTimer(slot)
            admitExchange(slot)
        case .reparseHead:
            stopTimer(slot)
            connections[s].state.resumeHead()
            startTimer(slot, .header)
            processInput(slot, inputBytes(slot), fromInput: true)
        }
    }
}

// MARK: - Edges

extension EventLoop {
    enum EdgeAdmission {
        /// A fetch signed by an edge: served without the player policy.
        case trusted
        /// A player's request: the player policy decides.
        case player
        /// A refusal was sent.
        case answered
    }

    /// Fetches edges sign with the shared key (`Marquee-Edge`, `EdgeSignature`) are trusted; a
    /// bad signature is refused (403) rather than treated as a player's request, so a broken edge
    /// key shows at once. With `origin.shield_only` players are refused.
    mutating func admitEdge(
        _ slot: Int32, _ head: RequestHead, _ buffer: UnsafeRawBufferPointer, _ absolutePath: UnsafeRawBufferPointer, origin: UnsafeRawBufferPointer
    ) -> EdgeAdmission {
        guard let signature = configuration.edgeSignature else { return .player }
        guard head.edgeSignature.isPresent else {
            if configuration.shieldOnly {
                metrics.add(.edgeRefused)
                respondWithError(slot, HTTPError(.forbidden, "this origin serves edges only (origin.shield_only)"), close: false, origin: origin)
                return .answered
            }
            return .player
        }
        switch signature.verify(head.edgeSignature.bytes(in: buffer), absolutePath: absolutePath, nowSeconds: dateSecond) {
        case .valid:
            metrics.add(.edgeFetches)
            return .trusted
        case .expired:
            metrics.add(.edgeRefused)
            respondWithError(slot, HTTPError(.forbidden, "the Marquee-Edge signature has expired (check the edge's clock)"), close: false, origin: origin)
        case .malformed:
            metrics.add(.edgeRefused)
            respondWithError(slot, HTTPError(.forbidden, "malformed Marquee-Edge signature"), close: false, origin: origin)
        case .badSignature:
            metrics.add(.edgeRefused)
            respondWithError(slot, HTTPError(.forbidden, "the Marquee-Edge signature does not match (edge and origin keys differ)"), close: false, origin: origin)
        }
        return .answered
    }
}
