"""Deterministic synthetic sequences in MOTChallenge layout, for the demo and the tests.

Textured, people-like figures (head, torso, legs, each person with their own colours and pattern)
walk across a textured background, cross and occlude each other. Ground truth is written in the
MOT17 form (with visibility); ``det/det.txt`` is a noisy detector: misses (more under occlusion),
false alarms and box jitter, scores in [0, 1].
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mot.io import atomic_write_text


@dataclass
class SyntheticSpec:
    """What to generate."""

    name: str = "SYN-01"
    num_frames: int = 120
    width: int = 640
    height: int = 360
    num_people: int = 8
    frame_rate: int = 25
    seed: int = 0
    miss_rate: float = 0.08        # detector misses a fully visible person with this probability
    false_alarms: float = 0.3      # mean false boxes per frame
    jitter: float = 0.04           # box noise, fraction of the box size
    # Frames (first, last) in which person 1 is hidden; it stands still meanwhile (as someone waiting
    # behind an obstacle), so a motion model alone expects it elsewhere when it reappears.
    occluded_gap: tuple[int, int] | None = None
    # With occluded_gap: person 1 is hidden by someone rather than by nothing drawn. An extra person
    # (the last id) comes towards them, stands just in front of them through the gap, then walks on
    # the way it came, so that when person 1 comes back the one who hid them is where they were
    # last seen.
    occluder: bool = False
    # Person heights, as fractions of the frame height (smaller people for dense scenes).
    height_range: tuple[float, float] = (0.25, 0.45)
    # People stand on one ground plane seen from one camera height, as in real footage: a person's
    # height is proportional to how far its feet are below the horizon (heights span height_range as
    # the feet go from FEET_ROWS[0] to FEET_ROWS[1] of the frame), times a body size in 0.9-1.1, and
    # changes as it walks up or down the frame. False: each person keeps one height drawn in
    # height_range wherever its feet are.
    perspective: bool = True
    # Everyone is in view from the first frame to the last (turning back at the frame's edges), so
    # that ``num_people`` is the number of people per frame (density benchmarks).
    stay: bool = False


FEET_ROWS = (0.55, 0.95)   # perspective: the rows (fractions of the frame height) the feet walk between


@dataclass
class _Person:
    pid: int
    x: float
    y: float
    vx: float
    vy: float
    height: float
    colours: np.ndarray   # (3, 3) uint8: torso, legs, head
    stripes: int
    enter: int
    leave: int
    size: float = 1.0    # perspective: body size, times the height the ground plane gives its feet
    pause: tuple[int, int] | None = None   # frames (first, last) in which it stands still


def _stand(person: _Person, feet: float, spec: SyntheticSpec) -> None:
    """Puts a person's feet on a row (perspective): its height follows the row, linearly from
    height_range[0] (times its size) with the feet at FEET_ROWS[0] to height_range[1] at
    FEET_ROWS[1] (a ground plane seen from one camera height)."""
    (r0, r1), (f0, f1) = spec.height_range, FEET_ROWS
    feet = float(np.clip(feet, f0 * spec.height, f1 * spec.height))
    person.height = person.size * spec.height * (r0 + (r1 - r0) * (feet / spec.height - f0) / (f1 - f0))
    person.y = feet - person.height


def _step(p: _Person, spec: SyntheticSpec) -> None:
    """One frame of walking."""
    p.x += p.vx
    if spec.stay and not 0 <= p.x <= spec.width:
        p.vx, p.x = -p.vx, float(np.clip(p.x, 0, spec.width))
    if spec.perspective:
        _stand(p, p.y + p.height + p.vy, spec)
    else:
        p.y = float(np.clip(p.y + p.vy, 0, spec.height - p.height))


def _occluder(first: _Person, spec: SyntheticSpec) -> _Person:
    """The person who walks up to stand in front of ``first`` through ``spec.occluded_gap`` (own
    random stream, so the other people are those of the scene without it)."""
    start, end = spec.occluded_gap
    ghost = dataclasses.replace(first)
    for f in range(1, start):               # where person 1 stands when the gap begins
        if ghost.enter < f <= ghost.leave:
            _step(ghost, spec)
    rng = np.random.default_rng(spec.seed + 7919)
    speed = 2.0 * spec.width / 640
    enter = max(start - 31, 0)
    vx = -speed if ghost.vx >= 0 else speed   # towards person 1, from where they are heading
    occ = _Person(pid=spec.num_people + 1, x=ghost.x - vx * (start - 1 - enter), y=0.0, vx=vx, vy=0.0,
                  height=ghost.height * 1.1, colours=rng.integers(30, 255, (3, 3)).astype(np.uint8),
                  stripes=int(rng.integers(0, 4)), enter=enter, leave=spec.num_frames, size=ghost.size * 1.05,
                  pause=(start, end))
    feet = ghost.y + ghost.height + 0.04 * spec.height   # nearer the camera: drawn in front
    if spec.perspective:
        _stand(occ, feet, spec)
    else:
        occ.y = feet - occ.height
    return occ


def _background(rng, w, h) -> np.ndarray:
    noise = rng.integers(0, 255, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    bg = cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)
    bg = cv2.GaussianBlur(bg, (0, 0), 3)
    bg = (0.5 * bg + 60).astype(np.uint8)
    for y in range(0, h, 40):
        cv2.line(bg, (0, y), (w, y + 10), (90, 90, 90), 1)
    return bg


def _people(rng, spec: SyntheticSpec) -> list[_Person]:
    people = []
    for pid in range(1, spec.num_people + 1):
        height = rng.uniform(*spec.height_range) * spec.height
        direction = 1 if pid % 2 else -1
        speed = rng.uniform(1.0, 3.0) * spec.width / 640
        enter = int(rng.integers(0, max(spec.num_frames // 3, 1)))
        life = int(rng.integers(spec.num_frames // 2, spec.num_frames + 1))
        x0 = rng.uniform(0.05, 0.6) * spec.width if direction > 0 else rng.uniform(0.4, 0.95) * spec.width
        people.append(_Person(
            pid=pid, x=x0, y=rng.uniform(0.3, 0.95) * spec.height - height,
            vx=direction * speed, vy=rng.uniform(-0.3, 0.3),
            height=height, colours=rng.integers(30, 255, (3, 3)).astype(np.uint8),
            stripes=int(rng.integers(0, 4)), enter=-1 if spec.stay else enter,
            leave=spec.num_frames if spec.stay else min(enter + life, spec.num_frames)))
        if spec.perspective:
            people[-1].size = float(rng.uniform(0.9, 1.1))
            _stand(people[-1], rng.uniform(*FEET_ROWS) * spec.height, spec)
    return people


def _draw(canvas: np.ndarray, mask: np.ndarray, tlwh, person: _Person, phase: float) -> None:
    x, y, w, h = (int(round(v)) for v in tlwh)
    torso, legs, head = (tuple(int(c) for c in col) for col in person.colours)
    head_r = max(int(w * 0.3), 2)
    cx = x + w // 2
    # Head, torso with stripes, two legs swinging with the walk.
    cv2.circle(canvas, (cx, y + head_r), head_r, head, -1)
    cv2.circle(mask, (cx, y + head_r), head_r, 255, -1)
    ty0, ty1 = y + 2 * head_r, y + int(h * 0.6)
    cv2.rectangle(canvas, (x, ty0), (x + w, ty1), torso, -1)
    cv2.rectangle(mask, (x, ty0), (x + w, ty1), 255, -1)
    for s in range(person.stripes):
        sy = ty0 + (s + 1) * (ty1 - ty0) // (person.stripes + 1)
        cv2.line(canvas, (x, sy), (x + w, sy), tuple(255 - c for c in torso), max(h // 40, 1))
    swing = int(np.sin(phase) * w * 0.25)
    for side in (-1, 1):
        foot = (cx + side * w // 4 + side * swing, y + h)
        cv2.line(canvas, (cx + side * w // 5, ty1), foot, legs, max(w // 4, 2))
        cv2.line(mask, (cx + side * w // 5, ty1), foot, 255, max(w // 4, 2))


def generate_sequence(root: str | Path, spec: SyntheticSpec) -> Path:
    """Writes one sequence under ``root/spec.name`` and returns its folder.

    Layout: ``seqinfo.ini``, ``img1/000001.jpg ...``, ``gt/gt.txt`` (MOT17 form, class 1, visibility),
    ``det/det.txt`` (``frame,-1,x,y,w,h,score,-1,-1,-1``).
    """
    rng = np.random.default_rng(spec.seed)
    folder = Path(root) / spec.name
    (folder / "img1").mkdir(parents=True, exist_ok=True)
    bg = _background(rng, spec.width, spec.height)
    people = _people(rng, spec)
    if spec.occluded_gap:
        people[0].pause = spec.occluded_gap
        if spec.occluder:
            people.append(_occluder(people[0], spec))
    gt_lines, det_lines = [], []
    for f in range(1, spec.num_frames + 1):
        canvas = bg.copy()
        visible = []
        for p in people:
            if not p.enter < f <= p.leave:
                continue
            paused = p.pause is not None and p.pause[0] <= f <= p.pause[1]
            if paused and p.pid == 1 and not spec.occluder:
                continue   # hidden by nothing drawn
            if not paused:
                _step(p, spec)
            w = p.height * 0.4
            tlwh = (p.x - w / 2, p.y, w, p.height)
            if tlwh[0] + w < 0 or tlwh[0] > spec.width:
                continue
            visible.append((p, tlwh))
        # Farther people (higher on screen, smaller feet y) are drawn first and hidden by nearer ones.
        visible.sort(key=lambda item: item[1][1] + item[1][3])
        masks = []
        for p, tlwh in visible:
            mask = np.zeros((spec.height, spec.width), np.uint8)
            _draw(canvas, mask, tlwh, p, phase=f * 0.4 + p.pid)
            masks.append(mask > 0)
        # Visible fraction: the part of each mask not covered by the masks drawn after it (back to
        # front, keeping one running union: linear in the number of people).
        visibility, union = [0.0] * len(masks), np.zeros((spec.height, spec.width), bool)
        for i in range(len(masks) - 1, -1, -1):
            area = masks[i].sum()
            visibility[i] = float((masks[i] & ~union).sum() / area) if area else 0.0
            union |= masks[i]
        for (p, tlwh), vis in zip(visible, visibility):
            x, y, w, h = tlwh
            gt_lines.append(f"{f},{p.pid},{x + 1:.2f},{y + 1:.2f},{w:.2f},{h:.2f},1,1,{vis:.3f}")
            if vis > 0.25 and rng.random() > spec.miss_rate + (1 - vis) * 0.5:
                jit = rng.normal(0, spec.jitter, 4) * np.array([w, h, w, h])
                score = float(np.clip(0.4 + 0.6 * vis - rng.uniform(0, 0.2), 0.05, 1.0))
                det_lines.append(f"{f},-1,{x + jit[0] + 1:.2f},{y + jit[1] + 1:.2f},"
                                 f"{max(w + jit[2], 4):.2f},{max(h + jit[3], 8):.2f},{score:.3f},-1,-1,-1")
        for _ in range(rng.poisson(spec.false_alarms)):
            h = rng.uniform(0.15, 0.4) * spec.height
            w = h * rng.uniform(0.3, 0.5)
            x, y = rng.uniform(0, spec.width - w), rng.uniform(0, spec.height - h)
            det_lines.append(f"{f},-1,{x + 1:.2f},{y + 1:.2f},{w:.2f},{h:.2f},{rng.uniform(0.05, 0.5):.3f},-1,-1,-1")
        noise = rng.normal(0, 4, canvas.shape)
        frame = np.clip(canvas + noise, 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / "img1" / f"{f:06d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
    atomic_write_text(folder / "gt" / "gt.txt", "\n".join(gt_lines) + "\n")
    atomic_write_text(folder / "det" / "det.txt", "\n".join(det_lines) + "\n")
    atomic_write_text(folder / "seqinfo.ini", (
        f"[Sequence]\nname={spec.name}\nimDir=img1\nframeRate={spec.frame_rate}\nseqLength={spec.num_frames}\n"
        f"imWidth={spec.width}\nimHeight={spec.height}\nimExt=.jpg\n"))
    return folder


DEMO_SPECS = (
    SyntheticSpec(name="SYN-01", seed=1),
    SyntheticSpec(name="SYN-02", seed=2, num_people=12, num_frames=150),
)


def ensure_demo_data(root: str | Path) -> Path:
    """Generates the embedded demo sequences under ``root`` unless they are already complete there."""
    root = Path(root)
    for spec in DEMO_SPECS:
        if not (root / spec.name / "seqinfo.ini").is_file():
            generate_sequence(root, spec)
    return root
