/// Decimal text (`2.000000`, `4`, `6.006`) as microseconds, rounding past the sixth decimal;
/// nil for anything else, negatives, or more than a day.
public func microseconds(decimal text: Substring) -> Int64? {
    var whole: Int64 = 0
    var fraction: Int64 = 0
    var fractionDigits = 0
    var seenDot = false
    var roundUp = false
    var digits = 0
    for c in text.utf8 {
        if c == UInt8(ascii: ".") {
            guard !seenDot else { return nil }
            seenDot = true
            continue
        }
        guard c >= 48 && c <= 57 else { return nil }
        let d = Int64(c - 48)
        digits += 1
        if !seenDot {
            whole = whole * 10 + d
            guard whole <= 86_400 else { return nil }
        } else if fractionDigits < 6 {
            fraction = fraction * 10 + d
            fractionDigits += 1
        } else if fractionDigits == 6 {
            roundUp = d >= 5
            fractionDigits += 1
        }
    }
    guard digits > 0 else { return nil }
    while fractionDigits < 6 {
        fraction *= 10
        fractionDigits += 1
    }
    return whole * 1_000_000 + fraction + (roundUp ? 1 : 0)
}
