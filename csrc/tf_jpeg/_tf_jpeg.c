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
  /* out */
  int status;
  int image_height, image_width, num_components, color_space, progressive;
  int rows_read;              /* rows of the window decoded before a premature end */
  long num_warnings;
  char message[JMSG_LENGTH_MAX + 128];
} job;

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
  if ((size_t)height * width * 3 > j->out_size) {
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
      const unsigned char *p = temp + offset;
      for (int i = 0; i < width; i++, p += 4) {
        int c = p[0], m = p[1], y = p[2], k = p[3];
        if (cinfo.saw_Adobe_marker) {
          line[3 * i + 0] = (unsigned char)((k * c) / 255);
          line[3 * i + 1] = (unsigned char)((k * m) / 255);
          line[3 * i + 2] = (unsigned char)((k * y) / 255);
        } else {
          line[3 * i + 0] = (unsigned char)((255 - k) * (255 - c) / 255);
          line[3 * i + 1] = (unsigned char)((255 - k) * (255 - m) / 255);
          line[3 * i + 2] = (unsigned char)((255 - k) * (255 - y) / 255);
        }
      }
    } else if (realign) {
      memcpy(line, temp + offset, row_bytes);
    }
    line += row_bytes;
  }
  free(temp);
  temp = NULL;

  if (j->crop && cinfo.output_scanline < cinfo.output_height)
    api.skip_scanlines(&cinfo, cinfo.output_height - (JDIMENSION)top - (JDIMENSION)height);

  if (status == OK && cinfo.output_components != out_comps) {
    status = ERR_COMPONENTS;
    snprintf(j->message, sizeof(j->message), "libjpeg produced %d components, %d expected",
             cinfo.output_components, out_comps);
  }
  j->num_warnings = err.pub.num_warnings;
  if (status == OK) {
    api.finish_decompress(&cinfo);
  } else {
    api.abort_decompress(&cinfo);
    if (status == ERR_TRUNCATED)
      snprintf(j->message, sizeof(j->message), "premature end of JPEG data: %d of the window's %d rows "
               "decoded (the file is truncated or its entropy-coded data is corrupt)", j->rows_read, height);
  }
  j->status = status;
  api.destroy_decompress(&cinfo);
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

static PyObject *py_loaded(PyObject *self, PyObject *noargs) {
  (void)self; (void)noargs;
  return PyBool_FromLong(api_ready);
}

static PyMethodDef methods[] = {
  {"init", py_init, METH_VARARGS, "init(path): load libjpeg-turbo's libjpeg.so.8 from path (once)."},
  {"loaded", py_loaded, METH_NOARGS, "Whether init() succeeded."},
  {"header", py_header, METH_VARARGS, header_doc},
  {"decode", py_decode, METH_VARARGS, decode_doc},
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
