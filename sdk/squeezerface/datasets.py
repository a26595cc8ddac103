"""Readers for face datasets on disk: LFW-style pair lists, identity folders, flat folders, and a
deterministic genuine/impostor pair builder. No torch, no image decoding: these only name files.

Why strict: a verification benchmark is only comparable if it is read exactly as published. A pairs file
that is silently short, shifted by a blank line or pointing at missing images yields a plausible but wrong
accuracy, so every deviation is an error that names the file, the line and the reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from squeezerface.errors import DatasetError, MissingImagesError, PairsFormatError

DEFAULT_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png")
"""File extensions (matched case-insensitively) that the folder readers treat as images."""

_INDEX = re.compile(r"[0-9]+")  # ASCII digits only: int() would also take "+1", "1_0" and non-ASCII digits
_ENUMERATE_LIMIT = 1 << 16  # pair sets up to this size are enumerated and shuffled; larger ones are sampled
_FALLBACK_LIMIT = 5_000_000  # largest impostor pair set enumerated when rejection sampling stalls


@dataclass(frozen=True)
class Pair:
    """One verification pair. fold is 0-based; line_no is the 1-based line of the pairs file it came from."""

    path1: Path
    path2: Path
    same: bool
    fold: int
    line_no: int


@dataclass(frozen=True)
class PairList:
    """All pairs of a pairs file, in file order: per fold, `per_fold` same-person pairs then `per_fold`
    different-person pairs."""

    pairs: tuple[Pair, ...]
    folds: int
    per_fold: int
    root: Path
    pairs_path: Path

    def __len__(self) -> int:
        return len(self.pairs)

    def __iter__(self) -> Iterator[Pair]:
        return iter(self.pairs)

    def labels(self) -> np.ndarray:
        """bool array, True for a same-person pair, in pair order."""
        return np.fromiter((p.same for p in self.pairs), dtype=bool, count=len(self.pairs))

    def fold_ids(self) -> np.ndarray:
        """int64 array of each pair's 0-based fold, in pair order (for k-fold threshold selection)."""
        return np.fromiter((p.fold for p in self.pairs), dtype=np.int64, count=len(self.pairs))

    def unique_paths(self) -> list[Path]:
        """Every image named by the pairs, sorted and deduplicated: embed each once, then look pairs up."""
        return sorted({p.path1 for p in self.pairs} | {p.path2 for p in self.pairs})


@dataclass(frozen=True)
class LabeledImage:
    """An image file and the identity (folder name) it belongs to."""

    path: Path
    identity: str


# --------------------------------------------------------------------------------------------- pairs.txt


def read_pairs(root: str | Path, pairs_path: str | Path, check_files: bool = True) -> PairList:
    """Read an LFW pairs file (`pairs.txt` View 2, or `pairsDevTrain.txt`/`pairsDevTest.txt` View 1).

    Format: a header line `FOLDS N` (View 2) or `N` (View 1, one fold), fields separated by any whitespace;
    then, per fold, N same-person lines `NAME i j` followed by N different-person lines
    `NAME1 i NAME2 j`. Image k of NAME is root/NAME/NAME_%04d.jpg (k counts from 1). Blank lines are
    allowed only at the end of the file.

    Beyond the format, a same-person line comparing an image with itself, a different-person line naming
    one person twice, and a name holding a path separator (which would point outside root) are refused.

    check_files: verify every named image exists; all missing ones are reported in one MissingImagesError.

    Raises DatasetError if the pairs file cannot be read (or root is missing when check_files),
    PairsFormatError (path, 1-based line number, line, reason) for the first malformed line, and
    MissingImagesError listing the missing images.
    """
    root = Path(root)
    pairs_path = Path(pairs_path)
    lines = _read_lines(pairs_path)
    folds, per_fold = _parse_header(pairs_path, lines[0] if lines else "")
    per_block = 2 * per_fold
    expected = folds * per_block

    end = len(lines)
    while end > 1 and not lines[end - 1].strip():
        end -= 1
    pairs: list[Pair] = []
    for line_no in range(2, end + 1):
        line = lines[line_no - 1]
        k = line_no - 2
        if k >= expected:
            raise PairsFormatError(
                pairs_path,
                line_no,
                line,
                f"extra line: the header promises {folds} fold(s) x {per_block} lines = {expected} pairs",
            )
        if not line.strip():
            raise PairsFormatError(pairs_path, line_no, line, "blank line in the middle of the file")
        fold, position = divmod(k, per_block)
        pairs.append(_parse_pair(root, pairs_path, line_no, line, fold, position < per_fold, per_fold))
    if len(pairs) < expected:
        raise PairsFormatError(
            pairs_path,
            len(pairs) + 2,
            "",
            f"file ends after {len(pairs)} pairs but the header promises {expected} "
            f"({folds} fold(s) x ({per_fold} same + {per_fold} different))",
        )

    result = PairList(tuple(pairs), folds, per_fold, root, pairs_path)
    if check_files:
        if not root.is_dir():
            raise DatasetError(f"dataset root not found or not a directory: {root} (named by {pairs_path})")
        missing = [p for p in result.unique_paths() if not p.is_file()]
        if missing:
            raise MissingImagesError(root, missing)
    return result


def _read_lines(path: Path) -> list[str]:
    """The file's lines, split on '\\n' only (so line numbers match an editor's), '\\r' and BOM removed."""
    if path.is_dir():
        raise DatasetError(f"pairs file is a directory: {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as e:
        raise DatasetError(f"pairs file not found: {path}") from e
    except UnicodeDecodeError as e:
        raise DatasetError(f"pairs file is not UTF-8 text: {path} ({e.reason} at byte {e.start})") from e
    except OSError as e:
        raise DatasetError(f"cannot read pairs file {path}: {e.strerror or e}") from e
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    return [] if lines == [""] else lines


def _parse_header(path: Path, line: str) -> tuple[int, int]:
    fields = line.split()
    usage = "expected a header 'FOLDS N' (View 2, e.g. '10 300') or 'N' (View 1, e.g. '1100') on line 1"
    if not fields:
        raise PairsFormatError(path, 1, line, f"header missing: {usage}")
    if len(fields) > 2 or not all(_INDEX.fullmatch(f) for f in fields):
        raise PairsFormatError(path, 1, line, f"invalid header: {usage}")
    numbers = [int(f) for f in fields]
    folds, per_fold = (1, numbers[0]) if len(numbers) == 1 else (numbers[0], numbers[1])
    if folds < 1 or per_fold < 1:
        raise PairsFormatError(path, 1, line, f"invalid header: counts must be >= 1; {usage}")
    return folds, per_fold


def _parse_pair(
    root: Path, path: Path, line_no: int, line: str, fold: int, same: bool, per_fold: int
) -> Pair:
    fields = line.split()
    layout = f"each fold holds {per_fold} same-person lines, then {per_fold} different-person lines"
    if same and len(fields) == 4:
        reason = f"different-person line (4 fields) where a same-person line 'NAME i j' is expected: {layout}"
        raise PairsFormatError(path, line_no, line, reason)
    if not same and len(fields) == 3:
        reason = "same-person line (3 fields) where a different-person line 'NAME1 i NAME2 j' is expected"
        reason = f"{reason}: {layout}"
        raise PairsFormatError(path, line_no, line, reason)
    if len(fields) not in (3, 4):
        want = "3 fields 'NAME i j'" if same else "4 fields 'NAME1 i NAME2 j'"
        raise PairsFormatError(path, line_no, line, f"wrong field count: expected {want}, got {len(fields)}")

    if same:
        name1, idx1, idx2 = fields
        name2 = name1
    else:
        name1, idx1, name2, idx2 = fields
    for name in {name1, name2}:
        if "/" in name or "\\" in name or name in (".", ".."):
            raise PairsFormatError(path, line_no, line, f"name {name!r} is a path, not a person's name")
    i = _parse_index(path, line_no, line, idx1)
    j = _parse_index(path, line_no, line, idx2)
    if same and i == j:
        raise PairsFormatError(path, line_no, line, f"same-person line compares image {i} with itself")
    if not same and name1 == name2:
        raise PairsFormatError(path, line_no, line, f"different-person line names {name1!r} twice")
    return Pair(_lfw_path(root, name1, i), _lfw_path(root, name2, j), same, fold, line_no)


def _parse_index(path: Path, line_no: int, line: str, token: str) -> int:
    if not _INDEX.fullmatch(token):
        raise PairsFormatError(path, line_no, line, f"image index {token!r} is not a non-negative integer")
    value = int(token)
    if value < 1:
        raise PairsFormatError(
            path, line_no, line, f"image index must be >= 1 (LFW counts from 1), got {value}"
        )
    return value


def _lfw_path(root: Path, name: str, index: int) -> Path:
    return root / name / f"{name}_{index:04d}.jpg"


# --------------------------------------------------------------------------------------------- folders


def read_identity_folders(
    root: str | Path,
    extensions: Sequence[str] = DEFAULT_EXTENSIONS,
    min_images_per_identity: int = 1,
) -> list[LabeledImage]:
    """Images laid out as ROOT/IDENTITY/image.ext, sorted by (identity, file name).

    Only direct children are read: files directly in root and deeper folders are ignored, as are hidden
    files and folders (names starting with '.'). Extensions match case-insensitively ('.JPG' counts).
    Identities with fewer than `min_images_per_identity` images are left out.

    Raises DatasetError if root is missing or no image remains.
    """
    if min_images_per_identity < 1:
        raise ValueError(f"min_images_per_identity must be >= 1, got {min_images_per_identity}")
    root = Path(root)
    exts = _normalise_extensions(extensions)
    images: list[LabeledImage] = []
    found = 0
    for folder in _list_dir(root):
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        files = _image_files(folder, exts)
        found += len(files)
        if len(files) >= min_images_per_identity:
            images.extend(LabeledImage(f, folder.name) for f in files)
    if not images:
        detail = (
            f"{found} image(s) found but no identity has >= {min_images_per_identity}"
            if found
            else "expected ROOT/IDENTITY/image files"
        )
        raise DatasetError(
            f"no images with extensions {', '.join(exts)} in identity folders of {root}: {detail}"
        )
    return images


def read_flat_folder(root: str | Path, extensions: Sequence[str] = DEFAULT_EXTENSIONS) -> list[Path]:
    """Image files directly in `root` (unlabeled faces), sorted by name; hidden files and subfolders ignored.

    Raises DatasetError if root is missing or holds no image.
    """
    root = Path(root)
    exts = _normalise_extensions(extensions)
    files = _image_files(root, exts)
    if not files:
        raise DatasetError(f"no images with extensions {', '.join(exts)} directly in {root}")
    return files


def _normalise_extensions(extensions: str | Iterable[str]) -> tuple[str, ...]:
    """Lower-case, dot-prefixed extensions; a lone string counts as one extension, not its characters."""
    items = [extensions] if isinstance(extensions, str) else list(extensions)
    exts = tuple(dict.fromkeys(e.lower() if e.startswith(".") else "." + e.lower() for e in items))
    if not exts or "." in exts:
        raise ValueError(f"extensions must be non-empty, like ('.jpg', '.png'); got {extensions!r}")
    return exts


def _list_dir(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise DatasetError(f"dataset folder not found or not a directory: {folder}")
    try:
        return sorted(folder.iterdir(), key=lambda p: p.name)
    except OSError as e:
        raise DatasetError(f"cannot list {folder}: {e.strerror or e}") from e


def _image_files(folder: Path, exts: tuple[str, ...]) -> list[Path]:
    return [
        p
        for p in _list_dir(folder)
        if not p.name.startswith(".") and p.suffix.lower() in exts and p.is_file()
    ]


# --------------------------------------------------------------------------------------------- make_pairs


def make_pairs(
    images: Sequence[LabeledImage],
    n_genuine: int,
    n_impostor: int,
    seed: int,
    folds: int = 10,
) -> list[tuple[Path, Path, bool, int]]:
    """Build genuine (same identity) and impostor (different identities) pairs, deterministically.

    Returns (path1, path2, same, fold) tuples ordered like LFW: fold 0's genuine pairs, then its impostor
    pairs, then fold 1's, ...; within a pair, path1 < path2 as strings. The result depends only on the set
    of images (not their order), the counts, the seed and `folds`.

    Folds are made by identity, so no identity appears in two folds and k-fold threshold selection never
    sees a test identity: identities are ordered by image count (largest first, ties broken by the seeded
    generator) and dealt to folds in a snake draft (0..F-1, F-1..0, ...), which keeps both the number of
    identities (within one) and the genuine-pair capacity of the folds even. Each fold then gets an equal
    share of each kind (the first `n % folds` folds one more). Genuine pairs of a fold are drawn
    round-robin over its identities, one new pair per identity per round, so large identities do not
    dominate; impostor pairs pick two distinct identities of the fold uniformly, then one image of each.
    No pair repeats and no image is paired with itself. Each fold and kind draws from its own child of
    SeedSequence(seed), so e.g. changing n_impostor leaves the genuine pairs unchanged.

    Raises DatasetError if the images cannot give that many pairs in balanced folds (saying how many
    they can), or if one path is labelled with two identities.
    """
    if folds < 1:
        raise ValueError(f"folds must be >= 1, got {folds}")
    if n_genuine < 0 or n_impostor < 0:
        raise ValueError(f"pair counts must be >= 0, got n_genuine={n_genuine}, n_impostor={n_impostor}")
    groups = _group_by_identity(images)
    streams = np.random.SeedSequence(seed).spawn(1 + 2 * folds)
    fold_members = _assign_folds(groups, folds, np.random.default_rng(streams[0]))

    sizes = [[len(groups[name]) for name in members] for members in fold_members]
    genuine_caps = [sum(k * (k - 1) // 2 for k in ks) for ks in sizes]
    impostor_caps = [(sum(ks) ** 2 - sum(k * k for k in ks)) // 2 for ks in sizes]
    problems = [
        _shortfall("genuine", n_genuine, genuine_caps, groups),
        _shortfall("impostor", n_impostor, impostor_caps, groups),
    ]
    if any(problems):
        raise DatasetError("; ".join(p for p in problems if p))

    result: list[tuple[Path, Path, bool, int]] = []
    genuine_share, impostor_share = _split(n_genuine, folds), _split(n_impostor, folds)
    for f, members in enumerate(fold_members):
        paths = [groups[name] for name in members]
        genuine_rng = np.random.default_rng(streams[1 + 2 * f])
        impostor_rng = np.random.default_rng(streams[2 + 2 * f])
        result.extend((a, b, True, f) for a, b in _genuine_pairs(paths, genuine_share[f], genuine_rng))
        result.extend((a, b, False, f) for a, b in _impostor_pairs(paths, impostor_share[f], impostor_rng))
    return result


def _group_by_identity(images: Sequence[LabeledImage]) -> dict[str, list[Path]]:
    """identity -> sorted unique paths, identities sorted: the canonical form every draw starts from."""
    label_of: dict[Path, str] = {}
    for image in images:
        path = Path(image.path)
        previous = label_of.setdefault(path, image.identity)
        if previous != image.identity:
            raise DatasetError(f"{path} is labelled both {previous!r} and {image.identity!r}")
    if not label_of:
        raise DatasetError("make_pairs needs images, got none")
    groups: dict[str, list[Path]] = {}
    for path, identity in label_of.items():
        groups.setdefault(identity, []).append(path)
    return {name: sorted(groups[name], key=str) for name in sorted(groups)}


def _assign_folds(groups: dict[str, list[Path]], folds: int, rng: np.random.Generator) -> list[list[str]]:
    names = list(groups)
    shuffled = [names[i] for i in rng.permutation(len(names))]
    ordered = sorted(shuffled, key=lambda name: -len(groups[name]))  # stable: ties keep the random order
    members: list[list[str]] = [[] for _ in range(folds)]
    for rank, name in enumerate(ordered):
        lap, slot = divmod(rank, folds)
        members[slot if lap % 2 == 0 else folds - 1 - slot].append(name)
    return members


def _split(n: int, folds: int) -> list[int]:
    return [n // folds + (1 if f < n % folds else 0) for f in range(folds)]


def _max_balanced(caps: list[int]) -> int:
    """Largest n whose balanced split fits every fold's capacity (shares grow monotonically with n)."""
    lo, hi = 0, sum(caps)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if all(share <= cap for share, cap in zip(_split(mid, len(caps)), caps, strict=True)):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _shortfall(kind: str, wanted: int, caps: list[int], groups: dict[str, list[Path]]) -> str:
    shares = _split(wanted, len(caps))
    short = [f for f, (share, cap) in enumerate(zip(shares, caps, strict=True)) if share > cap]
    if not short:
        return ""
    f = short[0]
    multi = sum(1 for paths in groups.values() if len(paths) >= 2)
    return (
        f"cannot make {wanted} {kind} pairs in {len(caps)} balanced fold(s): fold {f} can give "
        f"{caps[f]} but needs {shares[f]}; at most {_max_balanced(caps)} {kind} pairs are possible "
        f"({len(groups)} identities, {multi} with >= 2 images, {sum(caps)} {kind} pairs in total)"
    )


def _ordered(a: Path, b: Path) -> tuple[Path, Path]:
    return (a, b) if str(a) < str(b) else (b, a)


def _genuine_pairs(identities: list[list[Path]], n: int, rng: np.random.Generator) -> list[tuple[Path, Path]]:
    """n distinct same-identity pairs, one per identity per round, identities in a random order."""
    if n == 0:
        return []
    order = rng.permutation(len(identities))
    active = [_index_pairs(len(identities[i]), rng) for i in order if len(identities[i]) >= 2]
    owners = [identities[i] for i in order if len(identities[i]) >= 2]
    out: list[tuple[Path, Path]] = []
    while len(out) < n and active:
        still: list[int] = []
        for slot, stream in enumerate(active):
            if len(out) == n:
                break
            pair = next(stream, None)
            if pair is not None:
                out.append(_ordered(owners[slot][pair[0]], owners[slot][pair[1]]))
                still.append(slot)
        active = [active[s] for s in still]
        owners = [owners[s] for s in still]
    if len(out) < n:  # guarded by the capacity check in make_pairs
        raise DatasetError(f"internal error: only {len(out)} of {n} genuine pairs could be drawn")
    return out


def _index_pairs(k: int, rng: np.random.Generator) -> Iterator[tuple[int, int]]:
    """Every (i, j), i < j < k, once each, in random order: shuffled if few, else rejection-sampled."""
    total = k * (k - 1) // 2
    if total <= _ENUMERATE_LIMIT:
        rows, cols = np.triu_indices(k, 1)
        for t in rng.permutation(total):
            yield int(rows[t]), int(cols[t])
        return
    seen: set[tuple[int, int]] = set()
    while len(seen) < total:  # only a tiny fraction of a large set is ever asked for
        i, j = sorted(int(v) for v in rng.choice(k, size=2, replace=False))
        if (i, j) not in seen:
            seen.add((i, j))
            yield i, j


def _impostor_pairs(
    identities: list[list[Path]], n: int, rng: np.random.Generator
) -> list[tuple[Path, Path]]:
    """n distinct pairs of images of two different identities of the fold.

    Two identities are drawn uniformly, then one image of each; a repeat is redrawn. If repeats make
    that stall (n close to the number of possible pairs), the remaining free pairs are enumerated and
    shuffled instead.
    """
    if n == 0:
        return []
    chosen: dict[tuple[Path, Path], None] = {}
    attempts, budget = 0, 20 * n + 1000
    while len(chosen) < n and attempts < budget:
        attempts += 1
        a, b = rng.choice(len(identities), size=2, replace=False)
        pa, pb = identities[a], identities[b]
        pair = _ordered(pa[int(rng.integers(len(pa)))], pb[int(rng.integers(len(pb)))])
        chosen.setdefault(pair, None)
    if len(chosen) < n:
        sizes = [len(p) for p in identities]
        capacity = (sum(sizes) ** 2 - sum(s * s for s in sizes)) // 2
        if capacity > _FALLBACK_LIMIT:
            raise DatasetError(
                f"could draw only {len(chosen)} of {n} distinct impostor pairs in a fold of "
                f"{capacity} possible ones; ask for fewer"
            )
        free = [
            pair
            for a in range(len(identities))
            for b in range(a + 1, len(identities))
            for x in identities[a]
            for y in identities[b]
            if (pair := _ordered(x, y)) not in chosen
        ]
        for t in rng.permutation(len(free))[: n - len(chosen)]:
            chosen[free[t]] = None
    return list(chosen)
