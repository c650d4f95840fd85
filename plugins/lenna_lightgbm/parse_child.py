"""Run by ``model_text.parse_in_child`` as ``python -I -S parse_child.py LIBRARY`` with a text
model on stdin: loads only LightGBM's shared library (ctypes, no site packages) and does what
``lightgbm.Booster(model_str=...)`` and ``predict`` do to the model. A crash kills only this
process; an error LightGBM reports is printed on one line with exit code 1.
"""

import ctypes
import sys

DTYPE_FLOAT64 = 1
PREDICT_NORMAL = 0
PARAMETER_BUFFER = 1 << 20


def main() -> int:
    library = ctypes.CDLL(sys.argv[1])
    library.LGBM_GetLastError.restype = ctypes.c_char_p
    model = sys.stdin.buffer.read()
    handle, iterations = ctypes.c_void_p(), ctypes.c_int()

    def failed(step: str) -> int:
        message = library.LGBM_GetLastError().decode("utf-8", "replace").strip()
        print(f"LightGBM cannot {step} it: {message.splitlines()[0] if message else 'error'}")
        return 1

    if library.LGBM_BoosterLoadModelFromString(ctypes.c_char_p(model), ctypes.byref(iterations),
                                               ctypes.byref(handle)):
        return failed("parse")
    length = ctypes.c_int64()
    parameters = ctypes.create_string_buffer(PARAMETER_BUFFER)
    if library.LGBM_BoosterGetLoadedParam(handle, ctypes.c_int64(PARAMETER_BUFFER),
                                          ctypes.byref(length), parameters):
        return failed("read the parameters of")
    features = ctypes.c_int()
    if library.LGBM_BoosterGetNumFeature(handle, ctypes.byref(features)):
        return failed("count the features of")
    row = (ctypes.c_double * max(features.value, 1))()
    written, prediction = ctypes.c_int64(), (ctypes.c_double * 1)()
    if library.LGBM_BoosterPredictForMat(handle, row, DTYPE_FLOAT64, 1, features.value, 1,
                                         PREDICT_NORMAL, 0, -1, ctypes.c_char_p(b""),
                                         ctypes.byref(written), prediction):
        return failed("predict with")
    library.LGBM_BoosterFree(handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
