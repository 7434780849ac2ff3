import ArgumentParser
import MarqueeGateway

// A synchronous entry point on purpose: an async `main` parks the main thread in the dispatch
// main queue with every signal unblocked, so SIGTERM would kill the process instead of reaching
// the server's `sigwait` and draining.
@main
enum Entry {
    static func main() {
        // Before any other thread exists: every thread inherits the blocked mask.
        blockTerminationSignals()
        MarqueeCommand.main()
    }
}
