import ArgumentParser
import MarqueeGateway

@main
enum Entry {
    static func main() async {
        // Before any other thread exists, so that only the server's sigwait receives SIGTERM/SIGINT.
        blockTerminationSignals()
        await MarqueeCommand.main(nil)
    }
}
