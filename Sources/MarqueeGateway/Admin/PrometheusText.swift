import CLinux
import MarqueeBus
import MarqueeHTTP
import MarqueePolicy
import MarqueeTLS

/// Renders the loops' counters in the Prometheus text exposition format (version 0.0.4).
enum PrometheusText {
    /// A label value as the format quotes it: backslash, double quote and newline escaped.
    static func labelValue(_ text: String) -> String {
        var escaped = ""
        for character in text {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            default: escaped.append(character)
            }
        }
        return escaped
    }

    static func render(_ shared: SharedState) -> String {
        var out = ""
        func sum(_ index: Int) -> UInt64 { shared.metrics.reduce(0) { $0 + $1.read(index) } }
        func sum(_ counter: LoopMetrics.Counter) -> UInt64 { sum(counter.rawValue) }
        func family(_ name: String, _ type: String, _ help: String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }

        family("marquee_http_responses_total", "counter", "Responses sent, by status code.")
        for status in HTTPStatus.all {
            out += "marquee_http_responses_total{code=\"\(status.rawValue)\"} \(sum(LoopMetrics.statusBase + status.counterIndex))\n"
        }
        family("marquee_http_response_bytes_total", "counter", "Bytes of responses sent in full, heads included.")
        out += "marquee_http_response_bytes_total \(sum(.bytesSent))\n"
        family("marquee_http_spliced_bytes_total", "counter", "Body bytes moved from the page cache to sockets by splice.")
        out += "marquee_http_spliced_bytes_total \(sum(.splicedBytes))\n"

        family("marquee_http_request_duration_seconds", "histogram", "From a complete request head to the last byte handed to the kernel.")
        var cumulative: UInt64 = 0
        for (i, bound) in LoopMetrics.latencyBoundsMicroseconds.enumerated() {
            cumulative += sum(LoopMetrics.latencyBase + i)
            out += "marquee_http_request_duration_seconds_bucket{le=\"\(Double(bound) / 1_000_000)\"} \(cumulative)\n"
        }
        cumulative += sum(LoopMetrics.latencyBase + LoopMetrics.latencyBoundsMicroseconds.count)
        out += "marquee_http_request_duration_seconds_bucket{le=\"+Inf\"} \(cumulative)\n"
        out += "marquee_http_request_duration_seconds_sum \(Double(sum(.latencyMicrosecondsSum)) / 1_000_000)\n"
        out += "marquee_http_request_duration_seconds_count \(sum(.latencyCount))\n"

        family("marquee_policy_decisions_total", "counter", "Access-policy decisions, by check, outcome and reason.")
        for (i, label) in PolicyCounter.labels.enumerated() {
            out += "marquee_policy_decisions_total{check=\"\(label.check)\",outcome=\"\(label.outcome)\",reason=\"\(label.reason)\"} \(sum(LoopMetrics.policyBase + i))\n"
        }

        if let policy = shared.policy, policy.redisEndpoint != nil {
            family("marquee_redis_up", "gauge", "Whether each Redis link is up: the shared rate limiter, and the revocation feed (subscribed, snapshot loaded).")
            if let limiter = policy.redis { out += "marquee_redis_up{link=\"rate_limits\"} \(limiter.isAvailable ? 1 : 0)\n" }
            if let feed = policy.revocationFeed { out += "marquee_redis_up{link=\"revocations\"} \(feed.isSubscribed ? 1 : 0)\n" }
        }

        if !shared.upstreamNames.isEmpty {
            func proxied(_ upstream: Int, _ offset: Int) -> UInt64 { sum(LoopMetrics.proxyIndex(upstream: upstream, offset)) }
            let counters = LoopMetrics.ProxyCounter.allCases.count
            family("marquee_proxy_requests_total", "counter", "Requests admitted for a service upstream.")
            for (i, name) in shared.upstreamNames.enumerated() {
                out += "marquee_proxy_requests_total{upstream=\"\(name)\"} \(proxied(i, LoopMetrics.ProxyCounter.request.rawValue))\n"
            }
            family("marquee_proxy_responses_total", "counter", "Responses to proxied requests (relayed, or 502/504 from the gateway), by upstream and status class.")
            for (i, name) in shared.upstreamNames.enumerated() {
                for statusClass in 1...5 {
                    out += "marquee_proxy_responses_total{upstream=\"\(name)\",class=\"\(statusClass)xx\"} \(proxied(i, counters + statusClass - 1))\n"
                }
            }
            family("marquee_proxy_connect_failures_total", "counter", "Connections to an upstream that could not be opened.")
            for (i, name) in shared.upstreamNames.enumerated() {
                out += "marquee_proxy_connect_failures_total{upstream=\"\(name)\"} \(proxied(i, LoopMetrics.ProxyCounter.connectFailure.rawValue))\n"
            }
            family("marquee_proxy_timeouts_total", "counter", "Exchanges that got no response head (or no further body) within services.timeout_ms.")
            for (i, name) in shared.upstreamNames.enumerated() {
                out += "marquee_proxy_timeouts_total{upstream=\"\(name)\"} \(proxied(i, LoopMetrics.ProxyCounter.timeout.rawValue))\n"
            }
            family("marquee_proxy_body_budget_refusals_total", "counter", "Requests refused with 503 because request bodies held by a loop reached services.body_buffer_bytes_per_loop.")
            for (i, name) in shared.upstreamNames.enumerated() {
                out += "marquee_proxy_body_budget_refusals_total{upstream=\"\(name)\"} \(proxied(i, LoopMetrics.ProxyCounter.bodyBudgetRefusal.rawValue))\n"
            }
        }

        if let writer = shared.recordWriter {
            family("marquee_delivery_records_total", "counter", "Delivery records of media responses committed to the loops' rings.")
            out += "marquee_delivery_records_total \(sum(.deliveryRecords))\n"
            family("marquee_delivery_records_dropped_total", "counter", "Delivery records refused because a loop's ring was full.")
            out += "marquee_delivery_records_dropped_total \(writer.dropped)\n"
            family("marquee_delivery_records_truncated_total", "counter", "Delivery records with a text field cut to fit the layout.")
            out += "marquee_delivery_records_truncated_total \(sum(.deliveryRecordsTruncated))\n"
            family("marquee_delivery_records_shipped_total", "counter", "Delivery records the writer thread handed to its carrier.")
            out += "marquee_delivery_records_shipped_total \(writer.shipped)\n"
            family("marquee_delivery_carrier_errors_total", "counter", "Batches or flushes the carrier failed (the records stay in their ring and are offered again).")
            out += "marquee_delivery_carrier_errors_total \(writer.carrierErrors)\n"
            for (name, value) in writer.carrierCounters {
                family("marquee_delivery_records_\(name)_total", "counter", "Delivery records the carrier counted as \(name).")
                out += "marquee_delivery_records_\(name)_total \(value)\n"
            }
        }

        family("marquee_connections_open", "gauge", "Client connections open now.")
        out += "marquee_connections_open \(sum(.connectionsOpen))\n"
        family("marquee_connections_accepted_total", "counter", "Client connections accepted.")
        out += "marquee_connections_accepted_total \(sum(.connectionsAccepted))\n"
        family("marquee_connections_refused_total", "counter", "Connections refused with 503 at the connection limit.")
        out += "marquee_connections_refused_total \(sum(.connectionsRefused))\n"
        family("marquee_connection_timeouts_total", "counter", "Connections closed by a timeout, by kind.")
        out += "marquee_connection_timeouts_total{kind=\"header\"} \(sum(.headerTimeouts))\n"
        out += "marquee_connection_timeouts_total{kind=\"idle\"} \(sum(.idleTimeouts))\n"
        out += "marquee_connection_timeouts_total{kind=\"send\"} \(sum(.sendTimeouts))\n"
        out += "marquee_connection_timeouts_total{kind=\"body\"} \(sum(.bodyTimeouts))\n"

        family("marquee_file_cache_lookups_total", "counter", "Open-file cache lookups, by result.")
        out += "marquee_file_cache_lookups_total{result=\"hit\"} \(sum(.fileCacheHits))\n"
        out += "marquee_file_cache_lookups_total{result=\"miss\"} \(sum(.fileCacheMisses))\n"
        family("marquee_pipe_waits_total", "counter", "Large responses that waited for a free splice pipe.")
        out += "marquee_pipe_waits_total \(sum(.pipeWaits))\n"

        if let cache = shared.readThrough {
            family("marquee_cache_hits_total", "counter", "Requests served from the read-through cache without a fetch.")
            out += "marquee_cache_hits_total \(sum(.readThroughHits))\n"
            family("marquee_cache_misses_total", "counter", "Requests that waited for a fetch from the object store.")
            out += "marquee_cache_misses_total \(sum(.readThroughMisses))\n"
            family("marquee_cache_coalesced_total", "counter", "Misses that joined a fetch already under way for the same object.")
            out += "marquee_cache_coalesced_total \(sum(.readThroughCoalesced))\n"
            family("marquee_cache_streamed_total", "counter", "Misses served while the object's body arrived from upstream (a streaming fill).")
            out += "marquee_cache_streamed_total \(sum(.readThroughStreamed))\n"
            family("marquee_cache_streams_cut_total", "counter", "Streamed responses cut short because their fill failed part-way (the client saw a short body).")
            out += "marquee_cache_streams_cut_total \(sum(.readThroughStreamsCut))\n"
            family("marquee_cache_refreshes_total", "counter", "Requests for a stale copy that waited for its refresh (stale-while-revalidate serves without waiting).")
            out += "marquee_cache_refreshes_total \(sum(.readThroughRefreshes))\n"
            family("marquee_cache_fetches_total", "counter", "GETs made to the object store (origin) or the upstreams (edge).")
            out += "marquee_cache_fetches_total \(cache.read(.fetches))\n"
            family("marquee_cache_fetch_errors_total", "counter", "Fetches that failed (502) or timed out (504).")
            out += "marquee_cache_fetch_errors_total \(cache.read(.fetchErrors))\n"
            family("marquee_cache_not_found_total", "counter", "Fetches answered with 404 (or 410) by the store or the upstreams.")
            out += "marquee_cache_not_found_total \(cache.read(.notFound))\n"
            family("marquee_cache_evictions_total", "counter", "Files removed to keep the cache within cache.max_bytes.")
            out += "marquee_cache_evictions_total \(cache.read(.evictions))\n"
            if let memory = cache.memory {
                family("marquee_memory_cache_bytes", "gauge", "Bytes of cached objects whose pages the RAM tier holds in memory (cache.memory_bytes).")
                out += "marquee_memory_cache_bytes \(memory.read(.bytes))\n"
                family("marquee_memory_cache_objects", "gauge", "Cached objects held by the RAM tier.")
                out += "marquee_memory_cache_objects \(memory.read(.objects))\n"
                family("marquee_memory_cache_admissions_total", "counter", "Objects admitted to the RAM tier (S3-FIFO: into its small FIFO).")
                out += "marquee_memory_cache_admissions_total \(memory.read(.admissions))\n"
                family("marquee_memory_cache_evictions_total", "counter", "Objects the RAM tier let go to stay within cache.memory_bytes.")
                out += "marquee_memory_cache_evictions_total \(memory.read(.evictions))\n"
                family("marquee_memory_cache_locked", "gauge", "1 while the RAM tier's pages are locked in memory; 0 once the kernel refused (CAP_IPC_LOCK, RLIMIT_MEMLOCK).")
                out += "marquee_memory_cache_locked \(memory.read(.locked))\n"
            }
            family("marquee_cache_bytes", "gauge", "Bytes of files in the cache now.")
            out += "marquee_cache_bytes \(cache.read(.bytes))\n"
            family("marquee_cache_files", "gauge", "Files in the cache now.")
            out += "marquee_cache_files \(cache.read(.files))\n"
            family("marquee_cache_purged_total", "counter", "Files removed by purges (POST /purge on the admin listener).")
            out += "marquee_cache_purged_total \(cache.read(.purged))\n"
            if let feed = shared.purgeFeed {
                family("marquee_cache_purge_feed_subscribed", "gauge", "1 while subscribed to the purges of every gateway on the Redis (marquee:purges).")
                out += "marquee_cache_purge_feed_subscribed \(feed.isSubscribed ? 1 : 0)\n"
                family("marquee_cache_purges_received_total", "counter", "Purges heard on the Redis channel and applied (this gateway's own included).")
                out += "marquee_cache_purges_received_total \(feed.appliedCount)\n"
                family("marquee_cache_purge_feed_connects_total", "counter", "Connections the purge subscriber made (more than one means reconnects).")
                out += "marquee_cache_purge_feed_connects_total \(feed.connectCount)\n"
                family("marquee_cache_purge_log_gaps_total", "counter", "Catch-ups that found this cache's position gone from marquee:purge-log (trimmed, or Redis lost it) and made every cached object stale.")
                out += "marquee_cache_purge_log_gaps_total \(feed.staleAllCount)\n"
            }
        }
        /// A counter summed over the loops, exported only when `shown`.
        func total(_ shown: Bool, _ name: String, _ help: String, _ counter: LoopMetrics.Counter) {
            guard shown else { return }
            family(name, "counter", help)
            out += "\(name) \(sum(counter))\n"
        }
        total(shared.trustsEdges, "marquee_edge_fetches_total", "Media fetches signed by an edge (Marquee-Edge) and served.", .edgeFetches)
        total(shared.trustsEdges, "marquee_edge_refused_total", "Media requests refused for a bad edge signature or by origin.shield_only.", .edgeRefused)
        let tls = shared.tls != nil
        total(tls, "marquee_tls_handshakes_total", "TLS handshakes completed on the media listener.", .tlsHandshakes)
        total(tls, "marquee_tls_resumptions_total", "TLS handshakes that resumed a session from a ticket.", .tlsResumptions)
        total(
            tls, "marquee_tls_handshake_failures_total", "TLS handshakes refused: old protocol versions, no shared cipher, garbage or plain HTTP.",
            .tlsHandshakeFailures)
        total(tls, "marquee_tls_failures_total", "Established TLS connections cut by a record that failed or a peer that broke the protocol.", .tlsFailures)
        if let context = shared.tls?.current {
            family("marquee_tls_certificate_expiry_timestamp_seconds", "gauge", "When each served certificate expires (its notAfter), Unix seconds.")
            for (files, expiry) in zip(context.certificates, context.expiries) {
                out += "marquee_tls_certificate_expiry_timestamp_seconds{certificate=\"\(labelValue(files.chain))\"} \(expiry)\n"
            }
        }
        total(
            shared.upstreamTLS != nil, "marquee_upstream_tls_handshakes_total",
            "TLS sessions opened to https upstreams (a pooled connection keeps its session).", .upstreamTLSHandshakes)

        let perLoop: [(String, String, LoopMetrics.Counter)] = [
            ("marquee_ring_loop_turns_total", "Event-loop turns (one submit-and-wait each).", .loopTurns),
            ("marquee_ring_completions_total", "Completions processed.", .completions),
            ("marquee_ring_enter_calls_total", "io_uring_enter calls made by the loop's turns.", .submissions),
            ("marquee_ring_receive_buffers_exhausted_total", "Receives that found no provided buffer free.", .receiveBuffersExhausted),
            ("marquee_ring_accept_errors_total", "Accept completions with an error.", .acceptErrors),
        ]
        for (name, help, counter) in perLoop {
            family(name, "counter", help)
            for (loop, metrics) in shared.metrics.enumerated() {
                out += "\(name){loop=\"\(loop)\"} \(metrics.read(counter))\n"
            }
        }
        return out
    }
}
