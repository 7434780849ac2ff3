import Glibc
import MarqueeRedis
import Synchronization

/// Ships delivery records to a Redis stream (`docs/delivery-records.md`, "Redis Streams"), with
/// the local log as its write-ahead spill: every batch is appended to the log first, then XADDed
/// (pipelined, `MAXLEN ~`). The position of the first record not yet in the stream is kept in
/// the log's consumer file `redis-stream`, so the log's retention keeps what Redis has not taken
/// and a restart replays from there. While Redis is unreachable, batches only go to the log
/// (counted as spilled); when it answers again, the records are replayed in order before new
/// ones. At least once: a crash between XADD and the position's write replays a few records.
public final class RedisStreamCarrier: DeliveryRecordCarrier {
    public struct Settings: Sendable {
        public var endpoint: RedisEndpoint
        /// The stream's key (`bus.stream`).
        public var stream = "marquee:deliveries"
        /// `MAXLEN ~ N` on every XADD (`bus.stream_maxlen`); 0 leaves the stream unbounded.
        public var maxLength = 1_000_000
        /// Connect and reply timeout, in ms.
        public var timeoutMilliseconds = 1000
        /// How long after a failure the next connection is tried, in ms.
        public var retryMilliseconds = 1000

        public init(endpoint: RedisEndpoint) { self.endpoint = endpoint }
    }

    /// The log consumer name of the stream's position.
    public static let consumerName = "redis-stream"
    /// Records per pipeline: appended, then their replies read.
    static let pipelineRecords = 256

    let settings: Settings
    let log: DeliveryLogWriter
    let directory: String
    let identity: DeliveryLogIdentity
    private var connection: RedisConnection?
    private var retryAt: Int64 = 0
    /// The first log sequence not yet in the stream.
    private var streamed: UInt64
    private var recordedPosition: UInt64 = .max
    private let reader: DeliveryLogReader
    /// Fixed arguments of every XADD and the per-record ones' room: built once.
    private let arguments: XADDArguments
    /// Read by the admin thread for `/metrics`.
    private let spilledCount = Atomic<UInt64>(0)
    private let streamedCount = Atomic<UInt64>(0)
    private var lastError = ""

    /// Opens the log in `directory` (as `DeliveryLogCarrier` does) and remembers where the stream
    /// stands; connects on the first batch.
    public init(
        settings: Settings, directory: String, identity: DeliveryLogIdentity, segmentBytes: Int = 64 << 20,
        fsyncInterval: Duration = .milliseconds(100)
    ) throws {
        self.settings = settings
        self.directory = directory
        self.identity = identity
        log = try DeliveryLogWriter(directory: directory, identity: identity, segmentBytes: segmentBytes, fsyncInterval: fsyncInterval)
        reader = DeliveryLogReader(directory: directory)
        // Where an earlier start left the stream; the first start with Redis begins at the end
        // (what the log held before was never meant for the stream).
        streamed = Self.readPosition(directory) ?? log.nextSequence
        arguments = XADDArguments(settings: settings)
        try? recordPosition()
    }

    public var counters: [(name: String, value: UInt64)] {
        [("spilled", spilledCount.load(ordering: .relaxed)), ("streamed", streamedCount.load(ordering: .relaxed))]
    }

    public func ship(_ records: UnsafeRawBufferPointer) throws {
        let first = try log.append(records)
        let count = UInt64(records.count / DeliveryRecordLayout.size)
        // Records wait in the log behind older ones not yet streamed: order is kept.
        if streamed == first, connect() {
            do {
                try xadd(records, firstSequence: first, boot: identity.boot)
                streamed = first + count
                streamedCount.add(count, ordering: .relaxed)
                try recordPosition()
                return
            } catch {
                disconnect(error)
            }
        }
        spilledCount.add(count, ordering: .relaxed)
    }

    /// Syncs the log and replays what Redis has not taken yet, if it answers.
    public func flush() throws {
        try log.sync()
        try replay()
    }

    public func close() throws {
        try log.sync()
        try? replay()
        try? recordPosition()
        connection = nil
        try log.close()
    }

    /// Replays spilled records in order, a batch at a time, until the stream has caught up or
    /// Redis fails again.
    func replay() throws {
        while streamed < log.nextSequence, connect() {
            let batch = try reader.read(from: streamed, limit: Self.pipelineRecords)
            if batch.entries.isEmpty {
                streamed = batch.next  // removed by retention or unreadable: skipped, counted by the reader
                break
            }
            do {
                try xadd(batch.entries)
                streamedCount.add(UInt64(batch.entries.count), ordering: .relaxed)
                streamed = batch.next
                try recordPosition()
            } catch {
                disconnect(error)
                return
            }
        }
        try recordPosition()
    }

    // MARK: - Redis

    private func connect() -> Bool {
        if connection != nil { return true }
        let now = Self.nowMilliseconds()
        guard now >= retryAt else { return false }
        do {
            let micros = Int64(settings.timeoutMilliseconds) * 1000
            connection = try RedisConnection(endpoint: settings.endpoint, connectTimeoutMicros: micros, ioTimeoutMicros: micros)
            lastError = ""
            return true
        } catch {
            disconnect(error)
            return false
        }
    }

    private func disconnect(_ error: any Error) {
        connection = nil
        retryAt = Self.nowMilliseconds() + Int64(settings.retryMilliseconds)
        let text = "\(error)"
        if text != lastError {
            lastError = text
            var line = "marquee: delivery records: Redis stream unavailable, spilling to \(directory): \(text)\n"
            line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
        }
    }

    /// XADDs raw records (sequences from `firstSequence`), pipelined.
    private func xadd(_ records: UnsafeRawBufferPointer, firstSequence: UInt64, boot: UInt64) throws {
        guard let connection else { throw RedisConnection.Failure(description: "not connected") }
        let count = records.count / DeliveryRecordLayout.size
        var start = 0
        while start < count {
            let end = min(count, start + Self.pipelineRecords)
            for i in start..<end {
                let record = UnsafeRawBufferPointer(rebasing: records[(i * DeliveryRecordLayout.size)..<((i + 1) * DeliveryRecordLayout.size)])
                try arguments.append(to: connection, gateway: identity, boot: boot, sequence: firstSequence + UInt64(i), record: record)
            }
            try readReplies(connection, end - start)
            start = end
        }
    }

    /// XADDs records read back from the log, each with the boot of the segment that holds it.
    private func xadd(_ entries: [DeliveryLogEntry]) throws {
        guard let connection else { throw RedisConnection.Failure(description: "not connected") }
        let slot = UnsafeMutableRawPointer.allocate(byteCount: DeliveryRecordLayout.size, alignment: 16)
        defer { slot.deallocate() }
        for entry in entries {
            DeliveryRecordLayout.encode(entry.record, into: slot)
            try arguments.append(
                to: connection, gateway: entry.source, boot: entry.source.boot, sequence: entry.sequence,
                record: UnsafeRawBufferPointer(start: slot, count: DeliveryRecordLayout.size))
        }
        try readReplies(connection, entries.count)
    }

    private func readReplies(_ connection: RedisConnection, _ count: Int) throws {
        var failure: String?
        for _ in 0..<count {
            if case .error(let message) = try connection.reply() { failure = failure ?? message }
        }
        if let failure { throw RedisConnection.Failure(description: "XADD refused: \(failure)") }
    }

    private func recordPosition() throws {
        guard streamed != recordedPosition else { return }
        try DeliveryLogConsumers.record(Self.consumerName, next: streamed, in: directory)
        recordedPosition = streamed
    }

    static func readPosition(_ directory: String) -> UInt64? {
        let fd = open(directory + "/consumers/" + consumerName + ".offset", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        var bytes = [UInt8](repeating: 0, count: 32)
        let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return nil }
        return UInt64(String(decoding: bytes[0..<n].filter { $0 >= 0x30 && $0 <= 0x39 }, as: UTF8.self))
    }

    static func nowMilliseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}

/// `XADD <stream> [MAXLEN ~ N] * v 1 gw <id> role <role> region <region> boot <boot> seq <seq> r <record>`
/// as C argument arrays: the fixed words built once, the numbers formatted into fixed room.
struct XADDArguments {
    private let words: [[UInt8]]
    private let argv: UnsafeMutablePointer<UnsafePointer<CChar>?>
    private let lengths: UnsafeMutablePointer<Int>
    private let numbers: UnsafeMutablePointer<UInt8>
    private let count: Int
    /// Indexes of the per-record arguments.
    private let gatewayIndex, roleIndex, regionIndex, bootIndex, sequenceIndex, recordIndex: Int

    init(settings: RedisStreamCarrier.Settings) {
        var w: [String] = ["XADD", settings.stream]
        if settings.maxLength > 0 { w += ["MAXLEN", "~", String(settings.maxLength)] }
        w += ["*", "v", "1", "gw", "", "role", "", "region", "", "boot", "", "seq", "", "r", ""]
        count = w.count
        recordIndex = count - 1
        sequenceIndex = count - 3
        bootIndex = count - 5
        regionIndex = count - 7
        roleIndex = count - 9
        gatewayIndex = count - 11
        words = w.map { Array($0.utf8) + [0] }
        argv = .allocate(capacity: count)
        lengths = .allocate(capacity: count)
        numbers = .allocate(capacity: 64)
    }

    func append(
        to connection: RedisConnection, gateway: DeliveryLogIdentity, boot: UInt64, sequence: UInt64, record: UnsafeRawBufferPointer
    ) throws {
        let bootLength = Self.decimal(boot, into: numbers)
        let sequenceLength = Self.decimal(sequence, into: numbers + 32)
        var gatewayID = gateway.gatewayID
        var role = gateway.role
        var region = gateway.region
        try gatewayID.withUTF8 { id in
            try role.withUTF8 { roleBytes in
                try region.withUTF8 { regionBytes in
                    try withFixedWords {
                        set(gatewayIndex, id.baseAddress, id.count)
                        set(roleIndex, roleBytes.baseAddress, roleBytes.count)
                        set(regionIndex, regionBytes.baseAddress, regionBytes.count)
                        set(bootIndex, numbers, bootLength)
                        set(sequenceIndex, numbers + 32, sequenceLength)
                        set(recordIndex, record.baseAddress!.assumingMemoryBound(to: UInt8.self), record.count)
                        try connection.append(argc: Int32(count), argv: argv, lengths: lengths)
                    }
                }
            }
        }
    }

    private func set(_ index: Int, _ pointer: UnsafePointer<UInt8>?, _ length: Int) {
        let empty: StaticString = ""
        argv[index] = UnsafeRawPointer(pointer ?? empty.utf8Start).assumingMemoryBound(to: CChar.self)
        lengths[index] = length
    }

    private func withFixedWords(_ body: () throws -> Void) throws {
        func bind(_ i: Int) throws {
            guard i < words.count else { return try body() }
            try words[i].withUnsafeBufferPointer { word in
                argv[i] = UnsafeRawPointer(word.baseAddress!).assumingMemoryBound(to: CChar.self)
                lengths[i] = word.count - 1
                try bind(i + 1)
            }
        }
        try bind(0)
    }

    /// Writes `value` in decimal at `out` (room for 20 digits); returns the length.
    static func decimal(_ value: UInt64, into out: UnsafeMutablePointer<UInt8>) -> Int {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        return withUnsafeMutableBytes(of: &digits) { scratch in
            var v = value
            var n = 0
            repeat {
                scratch[n] = UInt8(48 + v % 10)
                v /= 10
                n += 1
            } while v > 0
            for i in 0..<n { out[i] = scratch[n - 1 - i] }
            return n
        }
    }
}
