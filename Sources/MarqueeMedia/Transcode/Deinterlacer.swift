import CFFmpeg

/// Removes combing from interlaced sources before scaling: every line of the bottom field is
/// replaced by the mean of the top-field lines around it (a "bob" of the top field, in place).
/// It halves vertical detail in motion and still areas alike, which is what a progressive ladder
/// of 1080 lines and below can afford; 8- and 16-bit planar formats.
enum Deinterlacer {
    static func deinterlace(_ frame: UnsafeMutablePointer<AVFrame>) -> Bool {
        guard av_frame_make_writable(frame) >= 0, let descriptor = av_pix_fmt_desc_get(AVPixelFormat(rawValue: frame.pointee.format)) else {
            return false
        }
        let wide = descriptor.pointee.comp.0.depth > 8
        let planes = Int(av_pix_fmt_count_planes(AVPixelFormat(rawValue: frame.pointee.format)))
        let f = frame.pointee
        let data = [f.data.0, f.data.1, f.data.2, f.data.3]
        let strides = [f.linesize.0, f.linesize.1, f.linesize.2, f.linesize.3]
        for plane in 0..<min(planes, 4) {
            guard let base = data[plane] else { continue }
            let chroma = plane == 1 || plane == 2
            let height = chroma ? (Int(f.height) + (1 << Int(descriptor.pointee.log2_chroma_h)) - 1) >> Int(descriptor.pointee.log2_chroma_h) : Int(f.height)
            let width = chroma ? (Int(f.width) + (1 << Int(descriptor.pointee.log2_chroma_w)) - 1) >> Int(descriptor.pointee.log2_chroma_w) : Int(f.width)
            let stride = Int(strides[plane])
            var y = 1
            while y < height {
                let row = base + y * stride
                let above = base + (y - 1) * stride
                let below = y + 1 < height ? base + (y + 1) * stride : above
                if wide {
                    let r = UnsafeMutableRawPointer(row).assumingMemoryBound(to: UInt16.self)
                    let a = UnsafeMutableRawPointer(above).assumingMemoryBound(to: UInt16.self)
                    let b = UnsafeMutableRawPointer(below).assumingMemoryBound(to: UInt16.self)
                    for x in 0..<width { r[x] = UInt16((UInt32(a[x]) + UInt32(b[x]) + 1) >> 1) }
                } else {
                    for x in 0..<width { row[x] = UInt8((UInt16(above[x]) + UInt16(below[x]) + 1) >> 1) }
                }
                y += 2
            }
        }
        return true
    }
}
