import ArgumentParser

@main
enum Entry {
    static func main() async {
        await MarqueeCommand.main(nil)
    }
}
