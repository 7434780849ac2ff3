import Testing
@testable import MarqueePolicy
