import ArgumentParser
import MarqueeTLS

@main
enum Entry {
    static func main() async {
        // Before anything can touch OpenSSL: it accepts allocation functions only while it has
        // allocated nothing.
        OpenSSLMemory.useThreadCaches()
        await MarqueeCommand.main(nil)
    }
}
