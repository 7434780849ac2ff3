import Benchmark
import MarqueeHTTP

// Micro-benchmarks for the request path of the origin: each runs its operation 1,000 times per
// measured iteration (scalingFactor .kilo), and mallocCountTotal must stay 0: the hot path never
// allocates.

/// An HLS segment request as a player sends it: Host, User-Agent, Accept, Range, Connection and
/// a CMCD query (CTA-5004) on the target.
let playerRequest: [UInt8] = Array(
    ("GET /live/ch1/1080p/seg_00042.m4s?CMCD=bl%3D21300%2Cbr%3D3200%2Cd%3D4004%2Cmtp%3D25400%2Cot%3Dv"
        + "%2Csf%3Dh%2Csid%3D%226e2fb550-c457-11e9-bb97-0800200c9a66%22%2Ctb%3D6000 HTTP/1.1\r\n"
        + "Host: cdn.example.com\r\n"
        + "User-Agent: AppleCoreMedia/1.0.0.21A329 (iPhone; U; CPU OS 17_0 like Mac OS X; en_us)\r\n"
        + "Accept: */*\r\n"
        + "Range: bytes=0-1048575\r\n"
        + "Connection: keep-alive\r\n"
        + "\r\n").utf8)
let segmentPath: [UInt8] = Array("/live/ch1/1080p/seg%2000042.m4s".utf8)
let rangeHeader: [UInt8] = Array("bytes=0-1048575".utf8)
let etag: [UInt8] = Array("\"5f3a9c00-3d0900\"".utf8)
let limits = RequestLimits()

/// Output memory, allocated once before any measurement, as the gateway's per-slot buffers are.
nonisolated(unsafe) let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 64)

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .throughput],
        warmupIterations: 10,
        scalingFactor: .kilo,
        maxDuration: .seconds(2))

    Benchmark("Parse player GET (HeadBoundary + RequestParser)") { benchmark in
        playerRequest.withUnsafeBytes { bytes in
            for _ in benchmark.scaledIterations {
                var boundary = HeadBoundary()
                guard case .complete(let headLength) = boundary.scan(bytes, limits: limits) else {
                    fatalError("the benchmark request must be a complete head")
                }
                blackHole(RequestParser.parse(bytes, headLength: headLength, limits: limits))
            }
        }
    }

    Benchmark("RequestPath.decode") { benchmark in
        segmentPath.withUnsafeBytes { raw in
            for _ in benchmark.scaledIterations {
                blackHole(RequestPath.decode(raw, into: scratch, maxLength: 1024))
            }
        }
    }

    Benchmark("HTTPDate.format") { benchmark in
        var epoch: Int64 = 1_763_798_400
        for _ in benchmark.scaledIterations {
            HTTPDate.format(epoch, into: scratch.baseAddress!)
            blackHole(scratch[3])
            epoch &+= 1
        }
    }

    Benchmark("ByteRange.evaluate") { benchmark in
        rangeHeader.withUnsafeBytes { header in
            for _ in benchmark.scaledIterations {
                blackHole(ByteRange.evaluate(header, length: 4_000_000))
            }
        }
    }

    Benchmark("ResponseWriter: 200 head") { benchmark in
        etag.withUnsafeBytes { etag in
            for _ in benchmark.scaledIterations {
                var writer = ResponseWriter(base: scratch.baseAddress!, capacity: scratch.count)
                writer.append(HTTPStatus.ok.statusLine)
                writer.append("Date: ")
                HTTPDate.format(1_763_798_400, into: writer.base + writer.count)
                writer.count += HTTPDate.length
                writer.append("\r\nContent-Type: ")
                writer.append(MediaType.mediaSegment.contentType)
                writer.append("\r\nContent-Length: ")
                writer.append(decimal: 4_000_000)
                writer.append("\r\nLast-Modified: ")
                HTTPDate.format(1_763_790_000, into: writer.base + writer.count)
                writer.count += HTTPDate.length
                writer.append("\r\nETag: ")
                writer.append(etag)
                writer.append("\r\nAccept-Ranges: bytes\r\nCache-Control: public, max-age=31536000, immutable\r\n")
                writer.append("Connection: keep-alive\r\n\r\n")
                blackHole(writer.count)
            }
        }
    }
}
