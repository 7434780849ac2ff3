import Testing
@testable import MarqueeTokens
