import CLinux

/// Reads of a file's shared mapping made in this process (encrypting a large file for TLS straight
/// from its page-cache pages), safe from the file being truncated
/// meanwhile: a page past the new end reads as zeros instead of killing the process with SIGBUS,
/// and the read reports that it faulted, so the caller discards its result and the mapping.
/// The only caller of `mq_mapped_read_*` (`Sources/CLinux/mapped_reads.h`): their state is per
/// compiled file.
enum MappedFileReads {
    private static let handlerInstalled: Bool = mq_mapped_read_install() == 0

    /// Puts the SIGBUS handler in place, once per process; false when the system refused it
    /// (mappings must then not be read in this process).
    static func install() -> Bool { handlerInstalled }

    /// Runs `read`, which reads only `range` of a mapping; the result, and whether a page of the
    /// range was past the file's end (then what `read` made from it is wrong).
    static func guarding<Result>(_ range: UnsafeRawBufferPointer, _ read: () -> Result) -> (result: Result, faulted: Bool) {
        mq_mapped_read_begin(range.baseAddress, range.count)
        let result = read()
        return (result, mq_mapped_read_end() == 1)
    }
}
