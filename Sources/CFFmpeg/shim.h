// FFmpeg 5.1 (Debian 12) for Swift: the headers, plus the macros Swift cannot import, as inline
// functions. No logic here.
#ifndef MARQUEE_CFFMPEG_SHIM_H
#define MARQUEE_CFFMPEG_SHIM_H

#include <libavformat/avformat.h>
#include <libavcodec/avcodec.h>
#include <libavutil/avutil.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/imgutils.h>
#include <libavutil/channel_layout.h>
#include <libavutil/display.h>
#include <libavutil/error.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
#include <libswresample/swresample.h>

static inline int mq_averror(int posix_error) { return AVERROR(posix_error); }
static inline int mq_averror_eof(void) { return AVERROR_EOF; }
static inline int mq_averror_invalid_data(void) { return AVERROR_INVALIDDATA; }
static inline int64_t mq_nopts_value(void) { return AV_NOPTS_VALUE; }
static inline AVRational mq_time_base_q(void) { return AV_TIME_BASE_Q; }

/// `av_strerror` into a caller's buffer (av_err2str is a macro with a compound literal).
static inline const char *mq_error_string(int error, char *buffer, size_t size) {
    av_strerror(error, buffer, size);
    return buffer;
}

/// The stream's display matrix rotation in degrees (counterclockwise, as FFmpeg reports it), or
/// 0 when the stream has none.
static inline double mq_stream_rotation(const AVStream *stream) {
    size_t size = 0;
    const uint8_t *matrix = av_stream_get_side_data(stream, AV_PKT_DATA_DISPLAYMATRIX, &size);
    if (matrix == NULL || size < 9 * sizeof(int32_t)) return 0;
    double rotation = av_display_rotation_get((const int32_t *)matrix);
    return rotation != rotation ? 0 : rotation;  // NaN for a degenerate matrix
}

#endif
