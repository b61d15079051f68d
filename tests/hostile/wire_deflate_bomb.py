"""Hostile (placed after the reference): answers each batch_norm call with a zip (what
torch.save writes) whose one record is 1 GiB of zeros DEFLATE-compressed to about 1 MiB.
Expected: nothing is inflated in the judge (no compressed records in the format);
those checks fail saying the answer was not plain data; the others keep their marks."""
import io
import zipfile


def _forge(size=1 << 30):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("archive/data/0", "w", force_zip64=True) as f:
            zero = bytes(16 << 20)
            for _ in range(size // len(zero)):
                f.write(zero)
    data = buf.getvalue()
    return len(data).to_bytes(8, "little") + data


try:
    import student_side.worker as _worker
    _real_encode = _worker.encode

    def _encode(answer):
        ok = answer.get("ok") if type(answer) is dict else None
        return _forge() if type(ok) is dict and "norm_ops" in ok else _real_encode(answer)
    _worker.encode = _encode
except ImportError:  # graded in-process: nothing to forge
    pass
