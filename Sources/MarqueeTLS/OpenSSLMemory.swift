import CTLS

/// OpenSSL's heap with a cache per thread (`Sources/CTLS/memory.h`): the blocks OpenSSL takes and
/// gives back for every record come from the thread's own free lists, so an open TLS connection
/// costs no allocator call per request.
public enum OpenSSLMemory {
    /// Installs the caches. Only an executable's first statement can: OpenSSL refuses once it has
    /// allocated anything (false then, and OpenSSL keeps malloc).
    @discardableResult
    public static func useThreadCaches() -> Bool { mq_openssl_use_thread_caches() == 1 }
}
