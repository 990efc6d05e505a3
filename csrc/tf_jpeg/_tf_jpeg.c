/* _tf_jpeg: TensorFlow's JPEG decode (tf.io.decode_jpeg / tf.image.decode_and_crop_jpeg, channels=3) on the
 * libjpeg API of libjpeg-turbo, for vit-parity.
 *
 * big_vision's training op decode_jpeg_and_inception_crop calls tf.image.decode_and_crop_jpeg, which decodes
 * only the crop window with libjpeg-turbo's partial decode (jpeg_crop_scanline + jpeg_skip_scanlines). The
 * window then acts as the image for chroma upsampling, so its edge columns differ from "decode everything,
 * then slice". This routine makes the same libjpeg calls, in the same order, with the same parameters and
 * the same error semantics as TensorFlow's decoder (tensorflow/core/lib/jpeg/jpeg_mem.cc, jpeg_handle.cc),
 * so the pixels and the accept/reject verdict are the same:
 *   - out_color_space JCS_RGB (grey JPEGs replicated by libjpeg), JCS_CMYK for CMYK/YCCK files, converted to
 *     RGB with TF's integer formula (Adobe files: r = k * c / 255, others (255 - k) * (255 - c) / 255);
 *   - fancy upsampling on, scale 1/1, the fast integer IDCT by default (TF's default dct_method);
 *   - crop: jpeg_crop_scanline (which moves x down to an iMCU boundary and widens the window), skip the rows
 *     above, read one scanline at a time, copy out the requested columns, skip the rows below;
 *   - the memory source behaves like TF's (try_recover_truncated=False): reading past the end of the data
 *     is an error, and a refill request while libjpeg still counts unread bytes suspends, which makes
 *     jpeg_read_scanlines return 0 rows: TF's "Premature end of JPEG data", an error for the whole call.
 *     Rows below the window are skipped without reading, so a file truncated below the window decodes.
 * Written from TensorFlow's documented behaviour and libjpeg's API (libjpeg.txt); no TF code is copied.
 *
 * No libjpeg is linked at build time: init() loads the libjpeg-turbo shared library bundled in the
 * imagecodecs wheel (or any libjpeg.so.8 with the libjpeg-turbo extensions) with dlopen and resolves the
 * 12 entry points. jpeg_CreateDecompress checks JPEG_LIB_VERSION and the struct size, so a library with
 * another ABI is refused with an error instead of misbehaving.
 *
 * Thread safety: every call builds its own decompressor on the stack; the GIL is released for the whole
 * decode (Py_BEGIN_ALLOW_THREADS), so threads decode in parallel.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dlfcn.h>
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jpeglib.h"
#include "jerror.h"

/* ---- the libjpeg entry points, resolved at run time ------------------------------------------------ */
typedef struct {
  struct jpeg_error_mgr *(*std_error)(struct jpeg_error_mgr *);
  void (*create_decompress)(j_decompress_ptr, int, size_t);
  void (*destroy_decompress)(j_decompress_ptr);
  int (*read_header)(j_decompress_ptr, boolean);
  void (*calc_output_dimensions)(j_decompress_ptr);
  boolean (*start_decompress)(j_decompress_ptr);
  void (*crop_scanline)(j_decompress_ptr, JDIMENSION *, JDIMENSION *);
  JDIMENSION (*skip_scanlines)(j_decompress_ptr, JDIMENSION);
  JDIMENSION (*read_scanlines)(j_decompress_ptr, JSAMPARRAY, JDIMENSION);
  boolean (*finish_decompress)(j_decompress_ptr);
  void (*abort_decompress)(j_decompress_ptr);
  boolean (*resync_to_restart)(j_decompress_ptr, int);
} jpeg_api;

static jpeg_api api;
static int api_ready = 0;
static void *lib_handle = NULL;

static PyObject *DecodeError;      /* _tf_jpeg.DecodeError(ValueError): args = (kind, message) */

/* ---- error manager: longjmp out of libjpeg, keep the message; warnings are counted, not printed ---- */
typedef struct {
  struct jpeg_error_mgr pub;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
} error_mgr;

static void on_error_exit(j_common_ptr cinfo) {
  error_mgr *err = (error_mgr *)cinfo->err;
  (*cinfo->err->format_message)(cinfo, err->message);
  longjmp(err->jump, 1);
}

static void on_output_message(j_common_ptr cinfo) { (void)cinfo; }

/* ---- memory source with TF's end-of-data semantics (try_recover_truncated_jpeg = false) ------------ */
typedef struct {
  struct jpeg_source_mgr pub;
  const JOCTET *data;
  size_t size;
} mem_source;

static void src_init(j_decompress_ptr cinfo) {
  mem_source *src = (mem_source *)cinfo->src;
  src->pub.next_input_byte = src->data;
  src->pub.bytes_in_buffer = src->size;
}

static boolean src_fill(j_decompress_ptr cinfo) {
  mem_source *src = (mem_source *)cinfo->src;
  if (src->pub.bytes_in_buffer == 0 && src->pub.next_input_byte == src->data)
    ERREXIT(cinfo, JERR_INPUT_EMPTY);     /* nothing at all to read */
  if (src->pub.bytes_in_buffer)
    return FALSE;                         /* libjpeg's count is stale mid-MCU: suspend, as TF does */
  ERREXIT(cinfo, JERR_FILE_READ);         /* really out of data */
  return FALSE;
}

static void src_skip(j_decompress_ptr cinfo, long count) {
  mem_source *src = (mem_source *)cinfo->src;
  if (count < 0) return;
  if ((size_t)count > src->pub.bytes_in_buffer) {
    src->pub.bytes_in_buffer = 0;
    (void)src_fill(cinfo);
  } else {
    src->pub.bytes_in_buffer -= (size_t)count;
    src->pub.next_input_byte += count;
  }
}

static void src_term(j_decompress_ptr cinfo) { (void)cinfo; }

/* ---- per-thread scratch for the decoded window (decode_resize) --------------------------------------- */
/* Reused across calls, so a large window does not cost fresh pages (first-touch faults) on every image;
 * one per thread, so threads decode side by side. */
static __thread unsigned char *scratch = NULL;
static __thread size_t scratch_cap = 0;

static unsigned char *scratch_get(size_t need) {
  if (need > scratch_cap) {
    size_t cap = need < ((size_t)1 << 20) ? ((size_t)1 << 20) : need;
    unsigned char *p = (unsigned char *)realloc(scratch, cap);
    if (!p) return NULL;
    scratch = p;
    scratch_cap = cap;
  }
  return scratch;
}

/* ---- one decode --------------------------------------------------------------------------------- */
enum { OK = 0, ERR_LIBJPEG, ERR_TRUNCATED, ERR_WINDOW, ERR_SIZE, ERR_COMPONENTS, ERR_MEMORY, ERR_OUTPUT };

typedef struct {
  /* in */
  const unsigned char *data;
  size_t size;
  int crop, top, left, height, width, fast_dct;
  int start;                  /* header only: also run jpeg_start_decompress (see py_header) */
  unsigned char *out;         /* height * width * 3 bytes, or NULL: only report the image size */
  size_t out_size;
  int to_scratch;             /* decode the window into this thread's scratch buffer (out unused) */
  const unsigned char *window;  /* out: with to_scratch, the window's first RGB pixel ... */
  size_t window_stride;         /* ... and the bytes from one of its rows to the next */
  /* out */
  int status;
  int image_height, image_width, num_components, color_space, progressive;
  int rows_read;              /* rows of the window decoded before a premature end */
  long num_warnings;
  char message[JMSG_LENGTH_MAX + 128];
} job;

/* TF's CMYK -> RGB (jpeg_mem.cc): Adobe files store inverted CMYK, so R = K * C / 255 there, else
 * R = (255 - K) * (255 - C) / 255; integer division truncates as in TF. */
static void cmyk_to_rgb(unsigned char *line, const unsigned char *p, int width, int adobe) {
  for (int i = 0; i < width; i++, p += 4) {
    int c = p[0], m = p[1], y = p[2], k = p[3];
    if (adobe) {
      line[3 * i + 0] = (unsigned char)((k * c) / 255);
      line[3 * i + 1] = (unsigned char)((k * m) / 255);
      line[3 * i + 2] = (unsigned char)((k * y) / 255);
    } else {
      line[3 * i + 0] = (unsigned char)((255 - k) * (255 - c) / 255);
      line[3 * i + 1] = (unsigned char)((255 - k) * (255 - m) / 255);
      line[3 * i + 2] = (unsigned char)((255 - k) * (255 - y) / 255);
    }
  }
}

/* After the window's rows: TF skips the rows below a crop (unread), then finishes, or aborts with the
 * verdict. Called from run(), inside its setjmp frame, so a libjpeg error here still lands there. */
static void finish(job *j, j_decompress_ptr cinfo, int status, int top, int height, int out_comps,
                   int num_warnings) {
  if (j->crop && cinfo->output_scanline < cinfo->output_height)
    api.skip_scanlines(cinfo, cinfo->output_height - (JDIMENSION)top - (JDIMENSION)height);
  if (status == OK && cinfo->output_components != out_comps) {
    status = ERR_COMPONENTS;
    snprintf(j->message, sizeof(j->message), "libjpeg produced %d components, %d expected",
             cinfo->output_components, out_comps);
  }
  j->num_warnings = num_warnings;
  if (status == OK) {
    api.finish_decompress(cinfo);
  } else {
    api.abort_decompress(cinfo);
    if (status == ERR_TRUNCATED)
      snprintf(j->message, sizeof(j->message), "premature end of JPEG data: %d of the window's %d rows "
               "decoded (the file is truncated or its entropy-coded data is corrupt)", j->rows_read, height);
  }
  j->status = status;
  api.destroy_decompress(cinfo);
}

static void run(job *j) {
  struct jpeg_decompress_struct cinfo;
  error_mgr err;
  mem_source src;
  unsigned char *volatile temp = NULL;
  volatile int created = 0;

  memset(&cinfo, 0, sizeof(cinfo));
  cinfo.err = api.std_error(&err.pub);
  err.pub.error_exit = on_error_exit;
  err.pub.output_message = on_output_message;
  err.message[0] = 0;
  if (setjmp(err.jump)) {
    /* Running out of data is TF's truncated-file error too (raised instead of suspending when libjpeg's
     * byte count was exhausted); everything else is libjpeg's own verdict on corrupt or unsupported data. */
    if (err.pub.msg_code == JERR_FILE_READ || err.pub.msg_code == JERR_INPUT_EMPTY) {
      j->status = ERR_TRUNCATED;
      snprintf(j->message, sizeof(j->message), "premature end of JPEG data (libjpeg: %s): the file is "
               "truncated", err.message);
    } else {
      j->status = ERR_LIBJPEG;
      snprintf(j->message, sizeof(j->message), "%s", err.message);
    }
    j->num_warnings = err.pub.num_warnings;
    free(temp);
    if (created) api.destroy_decompress(&cinfo);
    return;
  }
  api.create_decompress(&cinfo, JPEG_LIB_VERSION, sizeof(struct jpeg_decompress_struct));
  created = 1;

  memset(&src, 0, sizeof(src));
  src.pub.init_source = src_init;
  src.pub.fill_input_buffer = src_fill;
  src.pub.skip_input_data = src_skip;
  src.pub.resync_to_restart = api.resync_to_restart;
  src.pub.term_source = src_term;
  src.data = j->data;
  src.size = j->size;
  cinfo.src = &src.pub;

  if (api.read_header(&cinfo, TRUE) == JPEG_SUSPENDED) {
    /* The data ends inside the headers. TF ignores the return value and fails at the next call; same verdict. */
    j->status = ERR_TRUNCATED;
    snprintf(j->message, sizeof(j->message), "premature end of JPEG data in the headers: the file is truncated");
    api.destroy_decompress(&cinfo);
    return;
  }
  j->num_components = cinfo.num_components;
  j->color_space = (int)cinfo.jpeg_color_space;
  j->progressive = cinfo.progressive_mode ? 1 : 0;

  /* channels=3: RGB output; CMYK/YCCK decoded as CMYK and converted below (TF's choice). */
  int cmyk = (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK);
  cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
  cinfo.do_fancy_upsampling = TRUE;
  cinfo.scale_num = 1;
  cinfo.scale_denom = 1;
  cinfo.dct_method = j->fast_dct ? JDCT_IFAST : JDCT_ISLOW;
  api.calc_output_dimensions(&cinfo);
  j->image_height = (int)cinfo.output_height;
  j->image_width = (int)cinfo.output_width;

  long long total = (long long)cinfo.output_height * cinfo.output_width * cinfo.num_components;
  if (cinfo.output_width <= 0 || cinfo.output_height <= 0 || total >= (1LL << 29)) {
    j->status = ERR_SIZE;
    snprintf(j->message, sizeof(j->message), "image size %ux%u (x%d components) is empty or too large for "
             "TensorFlow's decoder (limit 2^29 samples)", cinfo.output_height, cinfo.output_width,
             cinfo.num_components);
    api.destroy_decompress(&cinfo);
    return;
  }
  if (!j->out) {              /* header only */
    j->status = OK;
    if (j->start) {
      if (!api.start_decompress(&cinfo)) {
        j->status = ERR_TRUNCATED;
        snprintf(j->message, sizeof(j->message), "premature end of JPEG data while reading the scans of a "
                 "multi-scan (progressive) JPEG: the file is truncated");
      } else {
        api.abort_decompress(&cinfo);
      }
    }
    api.destroy_decompress(&cinfo);
    return;
  }

  int top = 0, left = 0, height = (int)cinfo.output_height, width = (int)cinfo.output_width;
  if (j->crop) {
    top = j->top; left = j->left; height = j->height; width = j->width;
    if (width <= 0 || height <= 0 || top < 0 || left < 0 ||
        (long long)top + height > (long long)cinfo.output_height ||
        (long long)left + width > (long long)cinfo.output_width) {
      j->status = ERR_WINDOW;
      snprintf(j->message, sizeof(j->message), "crop window (top %d, left %d, height %d, width %d) does not "
               "fit the %ux%u image", top, left, height, width, cinfo.output_height, cinfo.output_width);
      api.destroy_decompress(&cinfo);
      return;
    }
  }
  if (!j->to_scratch && (size_t)height * width * 3 > j->out_size) {
    j->status = ERR_OUTPUT;
    snprintf(j->message, sizeof(j->message), "output buffer holds %zu bytes, %d x %d x 3 needed",
             j->out_size, height, width);
    api.destroy_decompress(&cinfo);
    return;
  }

  if (!api.start_decompress(&cinfo)) {
    /* Multi-scan (progressive) files are read whole here; suspension = the data ends early. TF ignores the
     * return value and fails at the next call (bad state); same verdict, clearer message. */
    j->status = ERR_TRUNCATED;
    snprintf(j->message, sizeof(j->message), "premature end of JPEG data while reading the scans of a "
             "multi-scan (progressive) JPEG: the file is truncated");
    api.destroy_decompress(&cinfo);
    return;
  }
  JDIMENSION skipped = 0;
  if (j->crop) {
    JDIMENSION x = (JDIMENSION)left, w = (JDIMENSION)width;
    api.crop_scanline(&cinfo, &x, &w);    /* x moves down to an iMCU boundary, output_width widens */
    skipped = api.skip_scanlines(&cinfo, (JDIMENSION)top);
  }

  const size_t row_bytes = (size_t)width * 3;
  const int out_comps = cmyk ? 4 : 3;
  if (j->to_scratch) {
    /* The same rows from the same calls, written straight into the scratch buffer at the widened width (no
     * per-row copy), several rows per jpeg_read_scanlines call: libjpeg produces the same samples whatever
     * the number of rows asked for per call (TF asks for one), and stops at the same row when data runs out. */
    const size_t stride = (size_t)cinfo.output_width * out_comps;
    unsigned char *buf = scratch_get(stride * (size_t)height);
    if (!buf) {
      j->status = ERR_MEMORY;
      snprintf(j->message, sizeof(j->message), "out of memory");
      api.destroy_decompress(&cinfo);
      return;
    }
    const size_t offset = (size_t)(cinfo.output_width - (JDIMENSION)width) * out_comps;
    const JDIMENSION end = skipped + (JDIMENSION)height;
    int status = OK;
    j->rows_read = 0;
    while (cinfo.output_scanline < end) {
      JSAMPROW rows[16];
      const JDIMENSION done = cinfo.output_scanline - skipped;
      JDIMENSION want = end - cinfo.output_scanline;
      if (want > 16) want = 16;
      for (JDIMENSION k = 0; k < want; k++) rows[k] = buf + (size_t)(done + k) * stride;
      JDIMENSION n = api.read_scanlines(&cinfo, rows, want);
      if (n == 0) {           /* the source suspended: TF's "Premature end of JPEG data" */
        status = ERR_TRUNCATED;
        j->rows_read = (int)cinfo.output_scanline - (int)skipped;
        if (j->rows_read < 0) j->rows_read = 0;
        break;
      }
      if (cmyk)               /* in place: each pixel is read before its bytes are written */
        for (JDIMENSION k = 0; k < n; k++) cmyk_to_rgb(rows[k], rows[k] + offset, width, cinfo.saw_Adobe_marker);
    }
    j->window = buf + (cmyk ? 0 : offset);
    j->window_stride = stride;
    finish(j, &cinfo, status, top, height, out_comps, err.pub.num_warnings);
    return;
  }
  const int realign = (cinfo.output_width != (JDIMENSION)width);
  /* the requested columns start this many pixels into each decoded (widened) row */
  const size_t offset = (size_t)(cinfo.output_width - (JDIMENSION)width) * out_comps;
  if (cmyk || realign) {
    temp = (unsigned char *)malloc((size_t)cinfo.output_width * out_comps);
    if (!temp) {
      j->status = ERR_MEMORY;
      snprintf(j->message, sizeof(j->message), "out of memory");
      api.destroy_decompress(&cinfo);
      return;
    }
  }

  int status = OK;
  unsigned char *line = j->out;
  const JDIMENSION end = skipped + (JDIMENSION)height;
  j->rows_read = 0;
  while (cinfo.output_scanline < end) {
    JSAMPROW row = (cmyk || realign) ? temp : line;
    JDIMENSION n = api.read_scanlines(&cinfo, &row, 1);
    if (n == 0) {             /* the source suspended: TF's "Premature end of JPEG data" */
      status = ERR_TRUNCATED;
      /* (negative when skipping the rows above the window already ran out of data) */
      j->rows_read = (int)cinfo.output_scanline - (int)skipped;
      if (j->rows_read < 0) j->rows_read = 0;
      break;
    }
    if (cmyk) {
      cmyk_to_rgb(line, temp + offset, width, cinfo.saw_Adobe_marker);
    } else if (realign) {
      memcpy(line, temp + offset, row_bytes);
    }
    line += row_bytes;
  }
  free(temp);
  temp = NULL;

  finish(j, &cinfo, status, top, height, out_comps, err.pub.num_warnings);
}

/* ---- big_vision's resize(size) (TF ResizeBilinear, half_pixel_centers) + flip_lr (+ value_range(-1, 1)) -------
 * The arithmetic of torch_impl/pp/backends/numba.py resize_tf (= pp.resize._axis_table / _bilinear, TF's
 * order), which the fast_paths family checks against big_vision's recorded outputs:
 *   axis tables in float32: scale = in / out, x = (i + 0.5) * scale - 0.5, lower = max(floor(x), 0),
 *   upper = min(ceil(x), in - 1), lerp = x - floor(x); a flip reverses the column table;
 *   horizontal: left + (right - left) * x_lerp per needed input row, then vertical:
 *   top + (bottom - top) * y_lerp, clipped to [0, 255] and truncated (big_vision's cast to uint8);
 *   value_range: that uint8 value as float32, / 127.5f - 1.0f (= big_vision's (x / 255) * 2 - 1, see
 *   torch_impl.pp.backends.numpy.to_value_range).
 * Bit-exactness needs every operation to be one IEEE float32 rounding: setup.py compiles with
 * -ffp-contract=off (GCC's default for C would fuse a * b + c into an FMA where the target has one) and no
 * -ffast-math; every constant is a float (f suffix), so nothing is computed in double. The vertical pass and
 * the conversions vectorise (same IEEE operations per lane); target_clones adds an AVX2 build chosen at load
 * time, which changes the instructions, not the arithmetic. */
/* an AVX2 build of the loop below next to the baseline one, picked at load time (x86-64 with glibc's ifunc) */
#if defined(__x86_64__) && defined(__GLIBC__) && !defined(TCLONES_OFF)
#define TCLONES __attribute__((target_clones("avx2", "default")))
#else
#define TCLONES
#endif
static void axis_table(int in_size, int out_size, int flip, int mult, int *lower, int *upper, float *lerp) {
  const float scale = (float)in_size / (float)out_size;
  const float top = (float)(in_size - 1);
  for (int i = 0; i < out_size; i++) {
    const float x = ((float)i + 0.5f) * scale - 0.5f;
    const float fl = floorf(x);
    const float ce = ceilf(x);
    const int j = flip ? out_size - 1 - i : i;
    lower[j] = mult * (int)(fl < 0.0f ? 0.0f : fl);
    upper[j] = mult * (int)(ce > top ? top : ce);
    lerp[j] = x - fl;
  }
}

/* The horizontal pass of one input row (interleaved RGB bytes) -> its lerps, channel-planar (dst[c * ow + x]):
 * left + (right - left) * x_lerp. The row is first split into three float32 planes (pw floats apart). */
typedef struct {
  int ow, nblocks;
  const int *lx, *ux;       /* columns (flip applied) */
  const float *wx;
  const int *base;          /* AVX2 path: per block of 8 outputs, the first input column of its taps ... */
  const int *li, *ui;       /* ... and each tap's column relative to it (0..23), or base[b] < 0: scalar block; */
  const int *wide;          /* wide[b]: block b's taps reach 16..23 columns from its base (a third register) */
  int any_wide;
} htable;

static void split_planes_scalar(const unsigned char *restrict row, int w, float *restrict p0, float *restrict p1,
                                float *restrict p2) {
  for (int i = 0; i < w; i++) {
    p0[i] = (float)row[3 * i];
    p1[i] = (float)row[3 * i + 1];
    p2[i] = (float)row[3 * i + 2];
  }
}

static void lerp_scalar(const float *restrict p, const htable *t, int x0, int x1, float *restrict d) {
  for (int x = x0; x < x1; x++) {
    const float left = p[t->lx[x]];
    d[x] = left + (p[t->ux[x]] - left) * t->wx[x];
  }
}

static void horizontal_row_scalar(const unsigned char *restrict row, int w, int pw, float *restrict planes,
                                  const htable *t, float *restrict dst) {
  split_planes_scalar(row, w, planes, planes + pw, planes + 2 * (size_t)pw);
  for (int c = 0; c < 3; c++) lerp_scalar(planes + (size_t)c * pw, t, 0, t->ow, dst + (size_t)c * t->ow);
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAVE_AVX2_PATH 1
/* The lanes idx (each 0..15) of the 16 floats q0 | q1: two in-register permutes and a blend. */
__attribute__((target("avx2")))
static inline __m256 pick16(__m256 q0, __m256 q1, __m256i idx, __m256i seven) {
  return _mm256_blendv_ps(_mm256_permutevar8x32_ps(q0, idx), _mm256_permutevar8x32_ps(q1, idx),
                          _mm256_castsi256_ps(_mm256_cmpgt_epi32(idx, seven)));
}

/* AVX2: the taps of 8 consecutive outputs lie within 16 consecutive input columns whenever the crop is at most
 * ~2x wider than the output (always when upscaling), within 24 up to ~2.9x, so two or three 8-float loads and
 * in-register permutes replace the 16 scalar loads; blocks whose taps spread wider use the scalar loop. The arithmetic is the same IEEE
 * float32 sub, mul, add per lane (no FMA: this target does not enable it). */
__attribute__((target("avx2")))
static void horizontal_row_avx2(const unsigned char *restrict row, int w, int pw, float *restrict planes,
                                const htable *t, float *restrict dst) {
  float *restrict p0 = planes, *restrict p1 = planes + pw, *restrict p2 = planes + 2 * (size_t)pw;
  /* split 8 pixels (24 bytes) at a time: bytes 0..15 and 8..23, shuffled into each channel's 8 bytes */
  const __m128i r_a = _mm_setr_epi8(0, 3, 6, 9, 12, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m128i r_b = _mm_setr_epi8(-1, -1, -1, -1, -1, -1, 10, 13, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m128i g_a = _mm_setr_epi8(1, 4, 7, 10, 13, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m128i g_b = _mm_setr_epi8(-1, -1, -1, -1, -1, 8, 11, 14, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m128i b_a = _mm_setr_epi8(2, 5, 8, 11, 14, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m128i b_b = _mm_setr_epi8(-1, -1, -1, -1, -1, 9, 12, 15, -1, -1, -1, -1, -1, -1, -1, -1);
  int i = 0;
  for (; i + 8 <= w; i += 8) {
    const __m128i a = _mm_loadu_si128((const __m128i *)(row + 3 * i));
    const __m128i b = _mm_loadu_si128((const __m128i *)(row + 3 * i + 8));
    const __m128i r = _mm_or_si128(_mm_shuffle_epi8(a, r_a), _mm_shuffle_epi8(b, r_b));
    const __m128i g = _mm_or_si128(_mm_shuffle_epi8(a, g_a), _mm_shuffle_epi8(b, g_b));
    const __m128i bl = _mm_or_si128(_mm_shuffle_epi8(a, b_a), _mm_shuffle_epi8(b, b_b));
    _mm256_storeu_ps(p0 + i, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(r)));
    _mm256_storeu_ps(p1 + i, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(g)));
    _mm256_storeu_ps(p2 + i, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bl)));
  }
  split_planes_scalar(row + 3 * i, w - i, p0 + i, p1 + i, p2 + i);
  const __m256i seven = _mm256_set1_epi32(7), fifteen = _mm256_set1_epi32(15);
  for (int c = 0; c < 3; c++) {
    const float *restrict p = planes + (size_t)c * pw;
    float *restrict d = dst + (size_t)c * t->ow;
    for (int k = 0; k < t->nblocks; k++) {
      const int x0 = 8 * k, base = t->base[k];
      if (base < 0) {
        lerp_scalar(p, t, x0, x0 + 8, d);
        continue;
      }
      const __m256 q0 = _mm256_loadu_ps(p + base), q1 = _mm256_loadu_ps(p + base + 8);
      const __m256i li = _mm256_loadu_si256((const __m256i *)(t->li + x0));
      const __m256i ui = _mm256_loadu_si256((const __m256i *)(t->ui + x0));
      __m256 left = pick16(q0, q1, li, seven), right = pick16(q0, q1, ui, seven);
      if (t->any_wide && t->wide[k]) {   /* taps spanning 16..23 columns (crops up to ~2.9x wider than the output) */
        const __m256 q2 = _mm256_loadu_ps(p + base + 16);
        left = _mm256_blendv_ps(left, _mm256_permutevar8x32_ps(q2, li),
                                _mm256_castsi256_ps(_mm256_cmpgt_epi32(li, fifteen)));
        right = _mm256_blendv_ps(right, _mm256_permutevar8x32_ps(q2, ui),
                                 _mm256_castsi256_ps(_mm256_cmpgt_epi32(ui, fifteen)));
      }
      const __m256 fx = _mm256_loadu_ps(t->wx + x0);
      _mm256_storeu_ps(d + x0, _mm256_add_ps(left, _mm256_mul_ps(_mm256_sub_ps(right, left), fx)));
    }
    lerp_scalar(p, t, 8 * t->nblocks, t->ow, d);
  }
}
#endif

static int use_avx2 = -1;
/* Whether this CPU runs the AVX2 passes (decided once; tests may switch to the scalar ones). */
static void detect_avx2(void) {
  if (use_avx2 >= 0) return;
#ifdef HAVE_AVX2_PATH
  __builtin_cpu_init();
  use_avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
#else
  use_avx2 = 0;
#endif
}

/* Test hooks (parity/families/fast_paths.py negative controls, tests/test_fast_pipeline.py): fault 1 moves every
 * upper column tap one column right (an off-by-one in the table), fault 2 computes the vertical lerp with one
 * fused multiply-add (the contraction -ffp-contract=off forbids); both must be caught by the checks. */
static int resize_fault = 0;

static void horizontal_row(const unsigned char *restrict row, int w, int pw, float *restrict planes,
                           const htable *t, float *restrict dst) {
#ifdef HAVE_AVX2_PATH
  if (use_avx2) {
    horizontal_row_avx2(row, w, pw, planes, t, dst);
    return;
  }
#endif
  horizontal_row_scalar(row, w, pw, planes, t, dst);
}

/* Output row y of the three planes from the horizontal rows above and below it. */
TCLONES
static void vertical_row(const float *restrict t, const float *restrict b, float fy, int n, int to_float,
                         float *restrict of, unsigned char *restrict ou) {
  /* Two simple loops (the clip + cast to uint8, then value_range of that uint8) rather than one: GCC
   * vectorises both, not the fused one. (A 256-entry table instead of the division is slower.) */
  for (int x = 0; x < n; x++) {
    float v = t[x] + (b[x] - t[x]) * fy;
    v = v < 0.0f ? 0.0f : v;
    v = v > 255.0f ? 255.0f : v;
    ou[x] = (unsigned char)(int)v;
  }
  if (to_float)
    for (int x = 0; x < n; x++) of[x] = (float)ou[x] / 127.5f - 1.0f;
}

#ifdef HAVE_AVX2_PATH
/* vertical_row with value_range, in registers: the lerp, clip, truncation to an integer, its float value,
 * / 127.5f - 1.0f: the same IEEE float32 operations per lane as vertical_row (no FMA in this target). */
__attribute__((target("avx2")))
static void vertical_row_float_avx2(const float *restrict t, const float *restrict b, float fy, int n,
                                    float *restrict of) {
  const __m256 f = _mm256_set1_ps(fy), zero = _mm256_setzero_ps(), top = _mm256_set1_ps(255.0f);
  const __m256 half_range = _mm256_set1_ps(127.5f), one = _mm256_set1_ps(1.0f);
  int x = 0;
  for (; x + 8 <= n; x += 8) {
    const __m256 tv = _mm256_loadu_ps(t + x);
    __m256 v = _mm256_add_ps(tv, _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(b + x), tv), f));
    v = _mm256_min_ps(_mm256_max_ps(v, zero), top);
    const __m256 u = _mm256_cvtepi32_ps(_mm256_cvttps_epi32(v));
    _mm256_storeu_ps(of + x, _mm256_sub_ps(_mm256_div_ps(u, half_range), one));
  }
  for (; x < n; x++) {
    float v = t[x] + (b[x] - t[x]) * fy;
    v = v < 0.0f ? 0.0f : v;
    v = v > 255.0f ? 255.0f : v;
    of[x] = (float)(int)v / 127.5f - 1.0f;
  }
}
#endif

/* src: h rows of w RGB pixels, `stride` bytes apart; out: (3, oh, ow) float32 (to_float) or uint8. */
static int resize_tf(const unsigned char *src, size_t stride, int h, int w, int oh, int ow, int flip, int to_float,
                     void *out) {
  detect_avx2();
  const int pw = w + 32;                    /* plane pitch: room for a 24-float load past any tap */
  const int nblocks = ow / 8;
  const size_t nint = 2 * (size_t)oh + 4 * (size_t)ow + 2 * (size_t)nblocks + 8;
  const size_t nflt = (size_t)oh + ow + 3 * (size_t)pw + 6 * (size_t)ow + (size_t)ow / 4 + 16;
  char *mem = (char *)calloc(nint * sizeof(int) + nflt * sizeof(float), 1);
  if (!mem) return -1;
  int *ly = (int *)mem, *uy = ly + oh, *lx = uy + oh, *ux = lx + ow, *li = ux + ow, *ui = li + ow, *base = ui + ow, *wide = base + nblocks;
  float *wy = (float *)(mem + nint * sizeof(int)), *wx = wy + oh, *planes = wx + ow;
  float *top = planes + 3 * (size_t)pw, *bottom = top + 3 * (size_t)ow;
  unsigned char *u8row = (unsigned char *)(bottom + 3 * (size_t)ow);   /* ow bytes (value_range's input) */
  axis_table(h, oh, 0, 1, ly, uy, wy);
  axis_table(w, ow, flip, 1, lx, ux, wx);
  if (resize_fault == 1)
    for (int x = 0; x < ow; x++) ux[x] = ux[x] + 1 < w ? ux[x] + 1 : w - 1;
  int any_wide = 0;
  for (int k = 0; k < nblocks; k++) {
    /* the tables are monotonic (decreasing when flipped): the block's taps span its two end outputs' */
    const int x0 = 8 * k, x7 = x0 + 7;
    const int b0 = lx[x0] < lx[x7] ? lx[x0] : lx[x7];
    const int b1 = ux[x0] > ux[x7] ? ux[x0] : ux[x7];
    base[k] = (b1 - b0 < 24) ? b0 : -1;
    wide[k] = b1 - b0 >= 16 && b1 - b0 < 24;
    any_wide |= wide[k];
    for (int x = x0; x <= x7; x++) {
      li[x] = lx[x] - b0;
      ui[x] = ux[x] - b0;
    }
  }
  const htable tab = {ow, nblocks, lx, ux, wx, base, li, ui, wide, any_wide};
  /* Each input row's horizontal lerp is computed once and reused by the consecutive output rows reading it. */
  int row_top = -1, row_bottom = -1;
  const size_t plane = (size_t)oh * ow;
  for (int y = 0; y < oh; y++) {
    const int r0 = ly[y], r1 = uy[y];
    if (r0 != row_top) {
      if (r0 == row_bottom) {
        float *t = top; top = bottom; bottom = t;
        row_top = row_bottom;
        row_bottom = -1;
      } else {
        horizontal_row(src + (size_t)r0 * stride, w, pw, planes, &tab, top);
        row_top = r0;
      }
    }
    if (r1 != row_bottom) {
      if (r1 == row_top)
        memcpy(bottom, top, 3 * (size_t)ow * sizeof(float));
      else
        horizontal_row(src + (size_t)r1 * stride, w, pw, planes, &tab, bottom);
      row_bottom = r1;
    }
    if (resize_fault == 2) {
      for (int c = 0; c < 3; c++)
        for (int x = 0; x < ow; x++) {
          const float t = top[(size_t)c * ow + x], b = bottom[(size_t)c * ow + x];
          float v = fmaf(b - t, wy[y], t);
          v = v < 0.0f ? 0.0f : (v > 255.0f ? 255.0f : v);
          const size_t o = (size_t)c * plane + (size_t)y * ow + x;
          if (to_float) ((float *)out)[o] = (float)(int)v / 127.5f - 1.0f;
          else ((unsigned char *)out)[o] = (unsigned char)(int)v;
        }
      continue;
    }
    for (int c = 0; c < 3; c++) {
      const size_t o = (size_t)c * plane + (size_t)y * ow;
#ifdef HAVE_AVX2_PATH
      if (to_float && use_avx2) {
        vertical_row_float_avx2(top + (size_t)c * ow, bottom + (size_t)c * ow, wy[y], ow, (float *)out + o);
        continue;
      }
#endif
      vertical_row(top + (size_t)c * ow, bottom + (size_t)c * ow, wy[y], ow, to_float,
                   to_float ? (float *)out + o : NULL, to_float ? u8row : (unsigned char *)out + o);
    }
  }
  free(mem);
  return 0;
}

/* ---- Python bindings ------------------------------------------------------------------------------ */
static const char *KIND[] = {"ok", "libjpeg", "truncated", "window", "size", "components", "memory", "output"};

static PyObject *raise_for(job *j) {
  PyObject *args = Py_BuildValue("(ss)", KIND[j->status], j->message);
  if (args) {
    PyErr_SetObject(DecodeError, args);
    Py_DECREF(args);
  }
  return NULL;
}

static int need_api(void) {
  if (!api_ready) {
    PyErr_SetString(PyExc_RuntimeError, "_tf_jpeg: no libjpeg loaded; call _tf_jpeg.init(path) first");
    return 0;
  }
  return 1;
}

static PyObject *py_init(PyObject *self, PyObject *args) {
  const char *path;
  (void)self;
  if (!PyArg_ParseTuple(args, "s", &path)) return NULL;
  if (api_ready) Py_RETURN_NONE;
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    PyErr_Format(PyExc_OSError, "cannot load %s: %s", path, dlerror());
    return NULL;
  }
#define RESOLVE(field, name)                                                          \
  do {                                                                                \
    *(void **)(&api.field) = dlsym(h, name);                                          \
    if (!api.field) {                                                                 \
      dlclose(h);                                                                     \
      PyErr_Format(PyExc_OSError, "%s does not export %s (not libjpeg-turbo >= 1.5 " \
                   "with the libjpeg 8 API)", path, name);                            \
      return NULL;                                                                    \
    }                                                                                 \
  } while (0)
  RESOLVE(std_error, "jpeg_std_error");
  RESOLVE(create_decompress, "jpeg_CreateDecompress");
  RESOLVE(destroy_decompress, "jpeg_destroy_decompress");
  RESOLVE(read_header, "jpeg_read_header");
  RESOLVE(calc_output_dimensions, "jpeg_calc_output_dimensions");
  RESOLVE(start_decompress, "jpeg_start_decompress");
  RESOLVE(crop_scanline, "jpeg_crop_scanline");
  RESOLVE(skip_scanlines, "jpeg_skip_scanlines");
  RESOLVE(read_scanlines, "jpeg_read_scanlines");
  RESOLVE(finish_decompress, "jpeg_finish_decompress");
  RESOLVE(abort_decompress, "jpeg_abort_decompress");
  RESOLVE(resync_to_restart, "jpeg_resync_to_restart");
#undef RESOLVE
  /* Refuse a library with another ABI now (jpeg_CreateDecompress checks version and struct size). */
  {
    struct jpeg_decompress_struct cinfo;
    error_mgr err;
    memset(&cinfo, 0, sizeof(cinfo));
    cinfo.err = api.std_error(&err.pub);
    err.pub.error_exit = on_error_exit;
    err.pub.output_message = on_output_message;
    if (setjmp(err.jump)) {
      dlclose(h);
      PyErr_Format(PyExc_OSError, "%s refuses the libjpeg 8 ABI this module was built for: %s", path,
                   err.message);
      return NULL;
    }
    api.create_decompress(&cinfo, JPEG_LIB_VERSION, sizeof(struct jpeg_decompress_struct));
    api.destroy_decompress(&cinfo);
  }
  lib_handle = h;
  api_ready = 1;
  Py_RETURN_NONE;
}

static PyObject *info_tuple(job *j) {
  return Py_BuildValue("(iiiiil)", j->image_height, j->image_width, j->num_components, j->color_space,
                       j->progressive, j->num_warnings);
}

PyDoc_STRVAR(header_doc,
"header(data, start=0) -> (height, width, num_components, jpeg_color_space, progressive, num_warnings)\n\n"
"The output size TensorFlow's decoder reports for ``data`` (reads the headers only). start=1 also runs "
"jpeg_start_decompress, which checks the first scan's tables (and reads every scan of a multi-scan file), "
"as tf.image.extract_jpeg_shape does.");

static PyObject *py_header(PyObject *self, PyObject *args) {
  Py_buffer data;
  job j;
  (void)self;
  if (!need_api()) return NULL;
  memset(&j, 0, sizeof(j));
  if (!PyArg_ParseTuple(args, "y*|i", &data, &j.start)) return NULL;
  j.data = (const unsigned char *)data.buf;
  j.size = (size_t)data.len;
  Py_BEGIN_ALLOW_THREADS
  run(&j);
  Py_END_ALLOW_THREADS
  PyBuffer_Release(&data);
  if (j.status != OK) return raise_for(&j);
  return info_tuple(&j);
}

PyDoc_STRVAR(decode_doc,
"decode(data, out, top, left, height, width, crop, fast_dct) -> (height, width, num_components, "
"jpeg_color_space, progressive, num_warnings)\n\n"
"Decode into ``out`` (a writable C-contiguous buffer of >= height*width*3 bytes, RGB rows) as TF does: "
"crop=1 is tf.image.decode_and_crop_jpeg(data, [top, left, height, width], channels=3), crop=0 is "
"tf.io.decode_jpeg(data, channels=3) (then height/width must be the image's). fast_dct=1 is TF's default "
"IDCT (JDCT_IFAST), 0 is dct_method='INTEGER_ACCURATE'. Raises DecodeError((kind, message)) where TF fails. "
"The GIL is released while decoding.");

static PyObject *py_decode(PyObject *self, PyObject *args) {
  Py_buffer data, out;
  job j;
  (void)self;
  memset(&j, 0, sizeof(j));
  if (!need_api()) return NULL;
  if (!PyArg_ParseTuple(args, "y*w*iiiiii", &data, &out, &j.top, &j.left, &j.height, &j.width, &j.crop,
                        &j.fast_dct))
    return NULL;
  if (!PyBuffer_IsContiguous(&out, 'C')) {
    PyBuffer_Release(&data);
    PyBuffer_Release(&out);
    PyErr_SetString(PyExc_ValueError, "out must be C-contiguous");
    return NULL;
  }
  j.data = (const unsigned char *)data.buf;
  j.size = (size_t)data.len;
  j.out = (unsigned char *)out.buf;
  j.out_size = (size_t)out.len;
  if (!j.crop) {
    j.top = j.left = 0;
  }
  Py_BEGIN_ALLOW_THREADS
  run(&j);
  Py_END_ALLOW_THREADS
  PyBuffer_Release(&data);
  PyBuffer_Release(&out);
  if (j.status != OK) return raise_for(&j);
  if (!j.crop && (j.height != j.image_height || j.width != j.image_width)) {
    /* crop=0 decodes the whole image; the caller passed the wrong size (run() checked the buffer size). */
    PyErr_Format(PyExc_ValueError, "decode(crop=0): the image is %dx%d, not %dx%d", j.image_height,
                 j.image_width, j.height, j.width);
    return NULL;
  }
  return info_tuple(&j);
}

PyDoc_STRVAR(decode_resize_doc,
"decode_resize(data, out, top, left, height, width, fast_dct, oh, ow, flip, value_range) -> (height, width, "
"num_components, jpeg_color_space, progressive, num_warnings)\n\n"
"big_vision's decode_and_crop_jpeg(data, [top, left, height, width]) (as decode(crop=1)), then "
"resize((oh, ow)) (TF ResizeBilinear, half-pixel centres, clip, truncating cast), mirrored left-right when "
"flip, and with value_range=1 value_range(-1, 1): written into ``out``, a writable C-contiguous buffer of "
"3*oh*ow float32 (value_range) or uint8, channel-planar (3, oh, ow). One call, the GIL released throughout; "
"the window is decoded into a per-thread scratch buffer.");

static PyObject *py_decode_resize(PyObject *self, PyObject *args) {
  Py_buffer data, out;
  job j;
  int oh, ow, flip, to_float, rc = 0;
  (void)self;
  memset(&j, 0, sizeof(j));
  if (!need_api()) return NULL;
  if (!PyArg_ParseTuple(args, "y*w*iiiiiiiii", &data, &out, &j.top, &j.left, &j.height, &j.width, &j.fast_dct,
                        &oh, &ow, &flip, &to_float))
    return NULL;
  if (!PyBuffer_IsContiguous(&out, 'C') || oh <= 0 || ow <= 0 ||
      (size_t)out.len != (size_t)3 * oh * ow * (to_float ? sizeof(float) : 1)) {
    PyBuffer_Release(&data);
    PyBuffer_Release(&out);
    PyErr_Format(PyExc_ValueError, "out must be a C-contiguous buffer of exactly 3 x %d x %d %s", oh, ow,
                 to_float ? "float32" : "uint8");
    return NULL;
  }
  j.data = (const unsigned char *)data.buf;
  j.size = (size_t)data.len;
  j.crop = 1;
  j.to_scratch = 1;
  j.out = (unsigned char *)out.buf;   /* (non-NULL: decode, not header only) */
  Py_BEGIN_ALLOW_THREADS
  run(&j);
  if (j.status == OK)
    rc = resize_tf(j.window, j.window_stride, j.height, j.width, oh, ow, flip, to_float, out.buf);
  Py_END_ALLOW_THREADS
  PyBuffer_Release(&data);
  PyBuffer_Release(&out);
  if (j.status != OK) return raise_for(&j);
  if (rc) return PyErr_NoMemory();
  return info_tuple(&j);
}

PyDoc_STRVAR(resize_doc,
"resize(src, stride, h, w, out, oh, ow, flip, value_range)\n\n"
"The resize (+ flip, + value_range) of decode_resize on an (h, w) RGB uint8 image whose rows start "
"``stride`` bytes apart in ``src`` (e.g. a slice of a larger image): out as in decode_resize.");

static PyObject *py_resize(PyObject *self, PyObject *args) {
  Py_buffer src, out;
  Py_ssize_t stride;
  int h, w, oh, ow, flip, to_float, rc;
  (void)self;
  if (!PyArg_ParseTuple(args, "y*niiw*iiii", &src, &stride, &h, &w, &out, &oh, &ow, &flip, &to_float))
    return NULL;
  const char *why = NULL;
  if (!PyBuffer_IsContiguous(&out, 'C') || oh <= 0 || ow <= 0 ||
      (size_t)out.len != (size_t)3 * oh * ow * (to_float ? sizeof(float) : 1))
    why = "out must be a C-contiguous buffer of 3 x oh x ow float32 (value_range) or uint8";
  else if (h <= 0 || w <= 0 || stride < (Py_ssize_t)w * 3 ||
           (size_t)src.len < (size_t)(h - 1) * (size_t)stride + (size_t)w * 3)
    why = "src does not hold h rows of w RGB pixels at this stride";
  if (why) {
    PyBuffer_Release(&src);
    PyBuffer_Release(&out);
    PyErr_SetString(PyExc_ValueError, why);
    return NULL;
  }
  Py_BEGIN_ALLOW_THREADS
  rc = resize_tf((const unsigned char *)src.buf, (size_t)stride, h, w, oh, ow, flip, to_float, out.buf);
  Py_END_ALLOW_THREADS
  PyBuffer_Release(&src);
  PyBuffer_Release(&out);
  if (rc) return PyErr_NoMemory();
  Py_RETURN_NONE;
}

static PyObject *py_set_resize_options(PyObject *self, PyObject *args) {
  int simd, fault;
  (void)self;
  if (!PyArg_ParseTuple(args, "ii", &simd, &fault)) return NULL;
  detect_avx2();
  PyObject *prev = Py_BuildValue("(ii)", use_avx2, resize_fault);
  if (simd >= 0) {
#ifdef HAVE_AVX2_PATH
    use_avx2 = simd && __builtin_cpu_supports("avx2") ? 1 : 0;
#else
    use_avx2 = 0;
#endif
  }
  if (fault >= 0) resize_fault = fault;
  return prev;
}

static PyObject *py_loaded(PyObject *self, PyObject *noargs) {
  (void)self; (void)noargs;
  return PyBool_FromLong(api_ready);
}

static PyMethodDef methods[] = {
  {"init", py_init, METH_VARARGS, "init(path): load libjpeg-turbo's libjpeg.so.8 from path (once)."},
  {"loaded", py_loaded, METH_NOARGS, "Whether init() succeeded."},
  {"header", py_header, METH_VARARGS, header_doc},
  {"decode", py_decode, METH_VARARGS, decode_doc},
  {"decode_resize", py_decode_resize, METH_VARARGS, decode_resize_doc},
  {"resize", py_resize, METH_VARARGS, resize_doc},
  {"_set_resize_options", py_set_resize_options, METH_VARARGS,
   "_set_resize_options(simd, fault) -> previous (simd, fault): tests only. simd 0 forces the scalar resize, 1 "
   "the AVX2 one where the CPU has it; fault 1/2 injects a table off-by-one / an FMA; -1 leaves a setting."},
  {NULL, NULL, 0, NULL}
};

static struct PyModuleDef module = {
  PyModuleDef_HEAD_INIT, "_tf_jpeg",
  "TensorFlow's JPEG decode (decode_jpeg / decode_and_crop_jpeg) on libjpeg-turbo, loaded at run time.",
  -1, methods, NULL, NULL, NULL, NULL
};

PyMODINIT_FUNC PyInit__tf_jpeg(void) {
  PyObject *m = PyModule_Create(&module);
  if (!m) return NULL;
  DecodeError = PyErr_NewException("torch_impl.pp._tf_jpeg.DecodeError", PyExc_ValueError, NULL);
  if (!DecodeError || PyModule_AddObject(m, "DecodeError", DecodeError) < 0) {
    Py_XDECREF(DecodeError);
    Py_DECREF(m);
    return NULL;
  }
  Py_INCREF(DecodeError);
  PyModule_AddIntConstant(m, "JPEG_LIB_VERSION", JPEG_LIB_VERSION);
  return m;
}
