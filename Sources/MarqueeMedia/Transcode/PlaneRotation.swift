import CFFmpeg

/// Rotates a YUV 4:2:0 picture by 90, 180 or 270 degrees clockwise, plane by plane (swscale
/// scales but does not rotate). `destination` must already have the rotated size.
enum PlaneRotation {
    static func rotate(_ source: UnsafeMutablePointer<AVFrame>, into destination: UnsafeMutablePointer<AVFrame>, clockwise degrees: Int) {
        let s = source.pointee
        let d = destination.pointee
        let planes: [(UnsafeMutablePointer<UInt8>?, Int32, UnsafeMutablePointer<UInt8>?, Int32, Int)] = [
            (s.data.0, s.linesize.0, d.data.0, d.linesize.0, 0), (s.data.1, s.linesize.1, d.data.1, d.linesize.1, 1),
            (s.data.2, s.linesize.2, d.data.2, d.linesize.2, 1),
        ]
        for (from, fromStride, to, toStride, shift) in planes {
            guard let from, let to else { continue }
            let sw = (Int(s.width) + shift) >> shift
            let sh = (Int(s.height) + shift) >> shift
            let dw = (Int(d.width) + shift) >> shift
            let dh = (Int(d.height) + shift) >> shift
            let fs = Int(fromStride)
            let ts = Int(toStride)
            switch degrees {
            case 90:
                for dy in 0..<min(dh, sw) {
                    let row = to + dy * ts
                    for dx in 0..<min(dw, sh) { row[dx] = from[(sh - 1 - dx) * fs + dy] }
                }
            case 270:
                for dy in 0..<min(dh, sw) {
                    let row = to + dy * ts
                    for dx in 0..<min(dw, sh) { row[dx] = from[dx * fs + (sw - 1 - dy)] }
                }
            default:  // 180
                for dy in 0..<min(dh, sh) {
                    let row = to + dy * ts
                    let sourceRow = from + (sh - 1 - dy) * fs
                    for dx in 0..<min(dw, sw) { row[dx] = sourceRow[sw - 1 - dx] }
                }
            }
        }
    }
}
