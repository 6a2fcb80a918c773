"""BPM and key: tags read, tempo and key heard, beside librosa, and what listening costs
``convert``, in one run.

    python bench/bench_analysis.py [--loops 60] [--rounds 6] [--more] [--skip-convert]

tags   : one file per way a BPM or key is carried (ID3 in MP3, WAV and AIFF; Vorbis comments in
         FLAC and OGG; M4A atoms; a WAV acid chunk; Apple Loops' basc), written by FFmpeg
         (PyAV), mutagen or by hand: how many sp404d reads right.
tempo  : drum loops from real one-shots with swing, pickups and tails that are not whole bars
         (:mod:`music_set`), scored as MIREX: Acc1 (within 4%), Acc2 (also at double, half,
         triple or a third); heard as the job hears them (at 48 kHz through the render's
         resampler). ``--more`` adds three sets of the same kind the rules were not tuned on
         (and three of key samples).
         Beside librosa's ``feature.tempo`` when librosa is installed (``pip install -e
         '.[bench]'``).
key    : 48 tonal samples, two in each of the 24 keys, scored as MIREX (1 right, 0.5 a fifth
         off, 0.3 relative, 0.2 parallel). Beside a Krumhansl-Schmuckler baseline: librosa's
         chroma_cqt correlated with the Krumhansl-Kessler profiles.
cost   : analysis time per second of audio, in one process; and ``sp404d convert`` with
         ``analysis: true`` (the default) over ``false``, in N alternating pairs, of two
         corpora: the convert benchmark's (mostly drum hits) and the loops and key samples
         above written as 44.1 kHz WAV (what listening costs on music).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

sys.path.insert(0, str(Path(__file__).resolve().parent))
import music_set
from corpus import make_corpus

from sp404d.audio import hear, tonality
from sp404d.metadata.carried import read_carried

NOTES = tonality.NOTES


def _key_index(key: str) -> tuple[int, bool]:
    minor = key.endswith("m")
    name = key[:-1] if minor else key
    flats = {"Db": "C#", "D#": "Eb", "Gb": "F#", "G#": "Ab", "A#": "Bb"}
    return NOTES.index(flats.get(name, name)), minor


def key_score(est: str | None, truth: str) -> float:
    """MIREX's weighted key score."""
    if est is None:
        return 0.0
    (a, am), (b, bm) = _key_index(est), _key_index(truth)
    if (a, am) == (b, bm):
        return 1.0
    if am == bm and (a - b) % 12 in (5, 7):
        return 0.5
    if (bm and not am and a == (b + 3) % 12) or (not bm and am and a == (b + 9) % 12):
        return 0.3
    return 0.2 if am != bm and a == b else 0.0


def tempo_scores(est: float | None, truth: float) -> tuple[bool, bool]:
    if est is None:
        return False, False
    near = [abs(est - truth * f) <= 0.04 * truth * f for f in (1, 2, 0.5, 3, 1 / 3)]
    return near[0], any(near)


def tags_read(folder: Path) -> tuple[int, int, list[str]]:
    """(read right, files, what went wrong)."""
    import av
    from mutagen.id3 import TBPM, TKEY
    from mutagen.mp4 import MP4, MP4FreeForm

    x = (0.3 * np.sin(2 * np.pi * 220 * np.arange(88200) / 44100)).astype(np.float32)
    cases: list[tuple[Path, float, str | None]] = []

    def ffmpeg(name: str, codec: str, tags: dict[str, str], rate: int = 44100) -> Path:
        path = folder / name
        fmt = {".mp3": "mp3", ".flac": "flac", ".ogg": "ogg", ".m4a": "ipod"}[path.suffix]
        with av.open(str(path), "w", format=fmt) as out:
            out.metadata.update(tags)
            stream = out.add_stream(codec, rate=rate)
            stream.layout = "mono"
            frame = av.AudioFrame.from_ndarray(x[None, : rate * 2], format="fltp", layout="mono")
            frame.sample_rate = rate
            for packet in [*stream.encode(frame), *stream.encode(None)]:
                out.mux(packet)
        return path

    cases.append((ffmpeg("id3.mp3", "libmp3lame", {"TBPM": "92", "TKEY": "Am"}), 92.0, "Am"))
    cases.append((ffmpeg("vorbis.flac", "flac", {"BPM": "120", "INITIALKEY": "8B"}), 120.0, "C"))
    cases.append(
        (ffmpeg("vorbis.ogg", "libopus", {"TEMPO": "87", "KEY": "F♯m"}, 48000), 87.0, "F#m")
    )
    m4a = ffmpeg("atoms.m4a", "aac", {"tmpo": "96"})
    tagged = MP4(m4a)
    tagged.tags["----:com.apple.iTunes:initialkey"] = [MP4FreeForm(b"Ebm")]  # type: ignore[index]
    tagged.save()
    cases.append((m4a, 96.0, "Ebm"))
    for fmt in ("WAV", "AIFF"):
        path = folder / f"id3.{fmt.lower()}"
        sf.write(str(path), x, 44100, format=fmt)
        import mutagen

        audio = mutagen.File(str(path))  # type: ignore[attr-defined]
        audio.add_tags()
        audio.tags.add(TBPM(text=["128"]))
        audio.tags.add(TKEY(text=["B minor"]))
        audio.save()
        cases.append((path, 128.0, "Bm"))
    for name, chunk, order, body, bpm, key in (
        (
            "acid.wav",
            b"acid",
            "<",
            struct.pack("<IHHfIHHf", 2, 57, 0, 0.0, 8, 4, 4, 93.5),
            93.5,
            None,
        ),
        (
            "basc.aif",
            b"basc",
            ">",
            struct.pack(">IIHHHHH", 1, 4, 57, 1, 4, 4, 0) + bytes(66),
            120.0,
            "Am",
        ),
    ):
        path = folder / name
        sf.write(str(path), x, 44100, format="AIFF" if order == ">" else "WAV")
        data = bytearray(path.read_bytes()) + chunk + struct.pack(order + "I", len(body)) + body
        data[4:8] = struct.pack(order + "I", len(data) - 8)
        path.write_bytes(bytes(data))
        cases.append((path, bpm, key))
    right, wrong = 0, []
    for path, bpm, key in cases:
        got: dict[str, object] = {}
        for _, values in read_carried(path).layers:
            for k, v in values.items():
                got.setdefault(k, v)
        if got.get("bpm") == bpm and got.get("key") == key:
            right += 1
        else:
            wrong.append(f"{path.name}: {got}")
    return right, len(cases), wrong


def _at_48k(sample: music_set.Sample) -> np.ndarray:
    """What the job listens to: the sample through the render's resampler, frames x channels."""
    x = sample.x if sample.x.ndim == 2 else sample.x[:, None]
    out: np.ndarray = soxr.resample(x.astype(np.float32), sample.rate, 48_000, quality="HQ")
    return out


def music_corpus(folder: Path) -> Path:
    """The tempo loops and key samples as a musician's folder: 16-bit WAV at 44.1 kHz."""
    marker = folder / ".complete"
    if not marker.exists():
        folder.mkdir(parents=True, exist_ok=True)
        for s in music_set.tempo_loops(60) + music_set.key_samples():
            name = s.name.replace(".", "_")
            sf.write(str(folder / f"{name}.wav"), s.x, s.rate, subtype="PCM_16")
        marker.touch()
    return folder


def convert_cost(corpus: Path, rounds: int) -> tuple[float, float, float, int]:
    """``sp404d convert`` of ``corpus`` with analysis on and off, in alternating pairs: the
    median wall-clock ratio, the best-of ratio, the CPU-time ratio (the machine's other load
    moves the wall clock more than the CPU time), and the file count."""
    work = Path(__file__).parent / "out"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    wall: dict[bool, list[float]] = {True: [], False: []}
    cpu: dict[bool, list[float]] = {True: [], False: []}
    for i in range(rounds):
        for on in (True, False) if i % 2 else (False, True):
            with tempfile.TemporaryDirectory(dir=work) as tmp:
                cfg = Path(tmp) / "c.yaml"
                cfg.write_text(
                    f"outbox: {tmp}/out\njournal: {tmp}/j.jsonl\nanalysis: {str(on).lower()}\n"
                )
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                t = time.perf_counter()
                subprocess.run(
                    [sys.executable, "-m", "sp404d", "convert", str(corpus), "--config", str(cfg)],
                    check=True,
                    capture_output=True,
                    env=env,
                )
                wall[on].append(time.perf_counter() - t)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu[on].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    med = statistics.median
    files = sum(1 for p in corpus.rglob("*") if p.is_file() and not p.name.startswith("."))
    return (
        med(wall[True]) / med(wall[False]),
        min(wall[True]) / min(wall[False]),
        med(cpu[True]) / med(cpu[False]),
        files,
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--loops", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--skip-convert", action="store_true")
    ap.add_argument("--more", action="store_true", help="also score three tempo sets not tuned on")
    a = ap.parse_args()
    try:
        import librosa
    except ImportError:
        librosa = None

    with tempfile.TemporaryDirectory() as tmp:
        right, count, wrong = tags_read(Path(tmp))
    print(f"tags read right: {right} of {count}" + "".join(f"\n  wrong: {w}" for w in wrong))

    sets = [("sp404d", 22, a.loops)]
    if a.more:
        sets += [(f"sp404d, seed {seed}", seed, n) for seed, n in ((99, 80), (7, 60), (123, 80))]
    rows = []
    loops: list[music_set.Sample] = []
    for name, seed, n in sets:
        group = music_set.tempo_loops(n, seed)
        loops = loops or group
        heard = [_at_48k(s) for s in group]
        audio_s = sum(len(x) / 48_000 for x in heard)
        acc = [0, 0]
        t = time.perf_counter()
        for s, x in zip(group, heard, strict=True):
            bpm = hear(x, 48_000, True, False).get("bpm")
            one, two = tempo_scores(float(bpm) if bpm else None, float(s.bpm or 0))
            acc[0] += one
            acc[1] += two
        took = time.perf_counter() - t
        rows.append((f"{name} ({n} loops)", acc[0] / n, acc[1] / n, 1000 * took / audio_s))
    audio_s = sum(len(s.x) / s.rate for s in loops)
    if librosa is not None:
        acc = [0, 0]
        t = time.perf_counter()
        for s in loops:
            bpm = float(librosa.feature.tempo(y=s.x, sr=s.rate)[0])
            one, two = tempo_scores(bpm, float(s.bpm or 0))
            acc[0] += one
            acc[1] += two
        took = time.perf_counter() - t
        rows.append(
            (
                f"librosa feature.tempo ({len(loops)} loops)",
                acc[0] / len(loops),
                acc[1] / len(loops),
                1000 * took / audio_s,
            )
        )
    print(f"\ntempo: {len(loops)} loops, {audio_s:.0f} s\n")
    print("| method | Acc1 | Acc2 | time per s of audio |\n|---|---|---|---|")
    for name, one, two, ms in rows:
        print(f"| {name} | {one:.3f} | {two:.3f} | {ms:.2f} ms |")

    samples = music_set.key_samples()
    key_s = sum(len(s.x) / s.rate for s in samples)
    print(f"\nkey: {len(samples)} samples, {key_s:.0f} s\n")
    print(
        "| method | weighted score | right | no answer | time per s of audio |\n"
        "|---|---|---|---|---|"
    )
    for seed in (23, 5, 77, 301) if a.more else (23,):
        group = samples if seed == 23 else music_set.key_samples(seed)
        heard = [_at_48k(s) for s in group]
        t = time.perf_counter()
        ours = [hear(x, 48_000, False, True).get("key") for x in heard]
        took = time.perf_counter() - t
        scores = [
            key_score(str(k) if k else None, str(s.key)) for k, s in zip(ours, group, strict=True)
        ]
        seconds = sum(len(x) / 48_000 for x in heard)
        print(
            f"| sp404d{'' if seed == 23 else f', seed {seed}'} | {np.mean(scores):.3f} | "
            f"{sum(s == 1 for s in scores)} | {sum(k is None for k in ours)} | "
            f"{1000 * took / seconds:.2f} ms |"
        )
    if librosa is not None:
        major = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
        minor = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
        t = time.perf_counter()
        base = []
        for s in samples:
            c = librosa.feature.chroma_cqt(y=s.x, sr=s.rate).sum(axis=1)
            fit = [np.corrcoef(np.roll(c, -k), p)[0, 1] for p in (major, minor) for k in range(12)]
            b = int(np.argmax(fit))
            base.append(key_score(NOTES[b % 12] + ("m" if b >= 12 else ""), str(s.key)))
        took = time.perf_counter() - t
        print(
            f"| Krumhansl-Schmuckler (librosa chroma_cqt) | {np.mean(base):.3f} | "
            f"{sum(s == 1 for s in base)} | 0 | {1000 * took / key_s:.2f} ms |"
        )
    if not a.skip_convert:
        work = Path(__file__).parent / "out"
        make_corpus(work / "corpus")
        corpora = [
            ("the convert benchmark's corpus", work / "corpus"),
            ("the loops and key samples above, as 44.1 kHz WAV", music_corpus(work / "music")),
        ]
        print(f"\nconvert, analysis on over off ({a.rounds} alternating pairs)\n")
        print("| corpus | files | wall (median) | wall (best) | CPU time (median) |")
        print("|---|---|---|---|---|")
        for name, folder in corpora:
            median, best, cpu, files = convert_cost(folder, a.rounds)
            print(f"| {name} | {files} | {median:.3f}x | {best:.3f}x | {cpu:.3f}x |")


if __name__ == "__main__":
    main()
