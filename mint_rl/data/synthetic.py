"""A seeded generator of CLEVRER-style videos with ground-truth instance masks.

A camera looks down at a grey floor (soft light gradient, soft shadows, mild sensor noise).
Spheres, cubes and cylinders in 8 colours and 2 materials (matte rubber, shiny metal) of two
sizes move on the floor under 2D rigid-body physics (pymunk: circles for spheres and cylinders,
boxes for cubes, elastic collisions, rolling friction as velocity damping). Some objects rest,
some move, some enter the view later and some leave it (come-and-go); nearer objects occlude
farther ones. Every frame gets an RGB image, an instance-id mask (0 = floor, object ``i`` of
``clip.objects`` has id ``i + 1``) and per-object tracks.

Geometry: a pinhole camera at height ``camera_height`` above the floor with a horizontal
optical axis and a shifted principal point, so a floor point ``(X, Z)`` (``Z`` = depth) maps
to ``u = W/2 + f X / Z`` and ``v = v_horizon + f h / Z``. Objects are drawn with the local
affine projection at their contact point (scale ``f / Z``, elevation angle ``atan(h / Z)``),
so far objects are smaller and seen more from the side.

Example:
    >>> clip = generate_clip(CLEVRER_LIKE_PRESETS["small"], seed=0)
    >>> clip.frames.shape, clip.masks.shape, clip.frames.dtype
    ((64, 96, 160, 3), (64, 96, 160), dtype('uint8'))
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from mint_rl.data.clip import Clip

SHAPES: tuple[str, ...] = ("sphere", "cube", "cylinder")
MATERIALS: tuple[str, ...] = ("rubber", "metal")
#: CLEVR's eight colours (RGB 0..255).
COLORS: dict[str, tuple[int, int, int]] = {
    "gray": (87, 87, 87),
    "red": (173, 35, 35),
    "blue": (42, 75, 215),
    "green": (29, 105, 20),
    "brown": (129, 74, 25),
    "purple": (129, 38, 192),
    "cyan": (41, 208, 208),
    "yellow": (255, 238, 51),
}
#: Object sizes: name -> radius in world units (cubes use 0.85 of it as half side).
SIZES: dict[str, float] = {"small": 0.75, "large": 1.1}

_LIGHT = np.array([-0.45, -0.75, 0.5], np.float32) / np.linalg.norm([-0.45, -0.75, 0.5])
_HALF = (_LIGHT + np.array([0.0, 0.0, 1.0], np.float32)) / np.linalg.norm(
    _LIGHT + np.array([0.0, 0.0, 1.0], np.float32)
)


@dataclass(frozen=True)
class ClevrerLikeConfig:
    """Everything that defines a CLEVRER-like clip except the seed.

    Attributes:
        height, width: image size in pixels.
        num_frames: frames per clip.
        fps: frames per second of the physics clock (motion per frame = speed / fps).
        n_initial: (min, max) objects inside the view at frame 0.
        n_entering: (min, max) objects that enter the view later (come-and-go).
        n_leaving: objects of the initial set launched towards the border (come-and-go).
        moving_fraction: probability that another initial object gets a random velocity.
        aim_fraction: probability that a moving or entering object is aimed at an object placed
            before it (CLEVRER is about collisions), instead of a random direction / point.
        speed: (min, max) launch speed in world units per second.
        damping: fraction of velocity kept after one second (rolling friction).
        substeps: physics steps per frame.
        z_near, z_far: floor depths seen at the bottom and top image rows (world units).
        camera_height: camera height above the floor (world units).
        noise_std: sensor noise standard deviation in uint8 levels (0 disables it).
        shadows: draw soft contact shadows.
        entry_frames: controlled entries: when given, exactly one object per listed frame is
            spawned just outside the left or right border at that frame and rolls straight into
            the view (towards a random point of the floor's middle third), replacing
            ``n_entering``'s random spawns.
        exit_frames: controlled exits: when given, one initial object per listed frame waits,
            fully visible, beside the left or right border and is launched out of the view at
            that frame (at twice the top launch speed), replacing ``n_leaving``; once out of
            view it is taken out of the world (its track is NaN from then on).
    """

    height: int = 320
    width: int = 480
    num_frames: int = 128
    fps: float = 25.0
    n_initial: tuple[int, int] = (3, 6)
    n_entering: tuple[int, int] = (1, 3)
    n_leaving: int = 1
    moving_fraction: float = 0.4
    aim_fraction: float = 0.6
    speed: tuple[float, float] = (3.0, 6.0)
    damping: float = 0.9
    substeps: int = 4
    z_near: float = 32.0
    z_far: float = 56.0
    camera_height: float = 24.0
    noise_std: float = 1.5
    shadows: bool = True
    entry_frames: tuple[int, ...] = ()
    exit_frames: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.height < 16 or self.width < 16:
            raise ValueError(f"image size: expected >= 16x16, got {self.height}x{self.width}")
        if self.num_frames < 1:
            raise ValueError(f"num_frames: expected >= 1, got {self.num_frames}")
        for name in ("n_initial", "n_entering", "speed"):
            lo, hi = getattr(self, name)
            if lo > hi or lo < 0:
                raise ValueError(f"{name}: expected 0 <= min <= max, got {(lo, hi)}")
        for name in ("entry_frames", "exit_frames"):
            frames = tuple(int(f) for f in getattr(self, name))
            if any(not 0 <= f < self.num_frames for f in frames):
                raise ValueError(f"{name}: expected frames in [0, {self.num_frames}), got {getattr(self, name)}")
            object.__setattr__(self, name, frames)  # frozen dataclass
        if not 0.0 < self.damping <= 1.0:
            raise ValueError(f"damping: expected in (0, 1], got {self.damping}")
        if not 0.0 < self.z_near < self.z_far:
            raise ValueError(f"depths: expected 0 < z_near < z_far, got {self.z_near}, {self.z_far}")

    @property
    def focal(self) -> float:
        """Focal length in pixels such that the floor spans ``z_near``..``z_far`` vertically."""
        return self.height / (self.camera_height * (1.0 / self.z_near - 1.0 / self.z_far))

    @property
    def v_horizon(self) -> float:
        """Image row of the horizon (negative: above the image)."""
        return self.height - self.focal * self.camera_height / self.z_near


#: Named presets: ``clevrer`` (480x320, 128 frames at 25 fps like CLEVRER), ``small``
#: (160x96, 64 frames at 12.5 fps: the same 5.12 s of motion, for CPU experiments) and
#: ``come-and-go`` (``small`` images with controlled entries and exits, for the economy metrics of
#: :mod:`mint_rl.metrics`): 4-6 objects at rest; one leaves at frame 14, one enters at frame 26,
#: another leaves at frame 40 and another enters at frame 50; strong rolling friction stops the
#: newcomers inside the view, so each count stays put for about ten frames between events.
CLEVRER_LIKE_PRESETS: dict[str, ClevrerLikeConfig] = {
    "clevrer": ClevrerLikeConfig(),
    "small": ClevrerLikeConfig(height=96, width=160, num_frames=64, fps=12.5, noise_std=1.0),
    "come-and-go": ClevrerLikeConfig(
        height=96, width=160, num_frames=64, fps=12.5, noise_std=1.0, n_initial=(4, 6),
        moving_fraction=0.0, damping=0.3, entry_frames=(26, 50), exit_frames=(14, 40),
    ),
}


def clevrer_like_preset(name: str, **overrides: Any) -> ClevrerLikeConfig:
    """A named preset, optionally with some fields replaced.

    Example:
        >>> clevrer_like_preset("small", num_frames=8).num_frames
        8
    """
    if name not in CLEVRER_LIKE_PRESETS:
        raise ValueError(f"preset: expected one of {sorted(CLEVRER_LIKE_PRESETS)}, got {name!r}")
    return replace(CLEVRER_LIKE_PRESETS[name], **overrides)


# ----------------------------------------------------------------------------- scene layout


@dataclass
class _Obj:
    shape: str
    color: str
    material: str
    size: str
    radius: float
    spawn_frame: int
    position: tuple[float, float]
    velocity: tuple[float, float]
    angle: float
    role: str  # "static", "moving", "leaving", "entering"
    launch_frame: int = 0  # the velocity is applied from this frame on (controlled exits)


def _half_width(cfg: ClevrerLikeConfig, z: float) -> float:
    """Half width of the visible floor at depth ``z`` (world units)."""
    return 0.5 * cfg.width * z / cfg.focal


def _sample_attributes(rng: np.random.Generator) -> dict[str, Any]:
    size = str(rng.choice(list(SIZES)))
    return {
        "shape": str(rng.choice(SHAPES)),
        "color": str(rng.choice(list(COLORS))),
        "material": str(rng.choice(MATERIALS)),
        "size": size,
        "radius": SIZES[size],
    }


def _layout(cfg: ClevrerLikeConfig, rng: np.random.Generator) -> list[_Obj]:
    """Sample the objects, their start states and their spawn frames."""
    objs: list[_Obj] = []
    n_init = int(rng.integers(cfg.n_initial[0], cfg.n_initial[1] + 1))
    exits = list(cfg.exit_frames)
    n_init = max(n_init, len(exits))
    placed: list[tuple[float, float, float]] = []
    for i in range(n_init):
        attrs = _sample_attributes(rng)
        r = attrs["radius"]
        controlled_exit = i < len(exits)
        for _ in range(200):
            z = float(rng.uniform(cfg.z_near + 2.0 * r, cfg.z_far - r))
            hw = _half_width(cfg, z) - 1.5 * r
            x = float(rng.uniform(-hw, hw))
            if controlled_exit:  # waits beside a side border, fully visible
                x = math.copysign(hw - 0.3 * r, 1.0 if i % 2 == 0 else -1.0)
            if all((x - px) ** 2 + (z - pz) ** 2 > (r + pr + 0.3) ** 2 for px, pz, pr in placed):
                break
        else:
            continue
        placed.append((x, z, r))
        angle = float(rng.uniform(0, 2 * math.pi))
        speed = float(rng.uniform(*cfg.speed))
        if controlled_exit:
            objs.append(_Obj(**attrs, spawn_frame=0, position=(x, z), velocity=(math.copysign(2.0 * cfg.speed[1], x), 0.0),
                             angle=angle, role="leaving", launch_frame=exits[i]))
            continue
        if not exits and i < cfg.n_leaving:
            # head for the nearest side border
            direction = np.array([math.copysign(1.0, x) if x != 0 else 1.0, rng.uniform(-0.3, 0.3)])
            role = "leaving"
        elif rng.random() < cfg.moving_fraction:
            others = placed[:-1]
            if others and rng.random() < cfg.aim_fraction:
                tx, tz, _ = others[int(rng.integers(len(others)))]
                direction = np.array([tx - x, tz - z])
            else:
                theta = rng.uniform(0, 2 * math.pi)
                direction = np.array([math.cos(theta), math.sin(theta)])
            role = "moving"
        else:
            direction, speed, role = np.zeros(2), 0.0, "static"
        direction = direction / max(np.linalg.norm(direction), 1e-9)
        objs.append(_Obj(**attrs, spawn_frame=0, position=(x, z), velocity=tuple(speed * direction),
                         angle=angle, role=role))
    entries = list(cfg.entry_frames)
    n_enter = len(entries) if entries else int(rng.integers(cfg.n_entering[0], cfg.n_entering[1] + 1))
    for j in range(n_enter):
        attrs = _sample_attributes(rng)
        r = attrs["radius"]
        if entries:
            z = float(rng.uniform(cfg.z_near + 4.0, cfg.z_far - 4.0))
            side = 1.0 if j % 2 == 0 else -1.0
            x = (_half_width(cfg, z) + 1.5 * r) * side
            target_z = float(rng.uniform(cfg.z_near + 4.0, cfg.z_far - 4.0))
            target_x = float(rng.uniform(-1.0, 1.0) * _half_width(cfg, target_z) / 3.0)
            direction = np.array([target_x - x, target_z - z])
            direction /= np.linalg.norm(direction)
            objs.append(_Obj(**attrs, spawn_frame=entries[j], position=(x, z),
                             velocity=tuple(cfg.speed[1] * direction), angle=float(rng.uniform(0, 2 * math.pi)),
                             role="entering", launch_frame=entries[j]))
            continue
        spawn = int(rng.integers(int(0.05 * cfg.num_frames), max(int(0.5 * cfg.num_frames), 1) + 1))
        side = rng.choice(["left", "right", "back"])
        if side == "back":
            z = cfg.z_far + 3.0 * r
            x = float(rng.uniform(-0.6, 0.6) * _half_width(cfg, z))
        else:
            z = float(rng.uniform(cfg.z_near + 4.0, cfg.z_far - 4.0))
            x = (_half_width(cfg, z) + 2.5 * r) * (-1.0 if side == "left" else 1.0)
        target_z = float(rng.uniform(cfg.z_near + 4.0, cfg.z_far - 4.0))
        target_x = float(rng.uniform(-0.5, 0.5) * _half_width(cfg, target_z))
        if placed and rng.random() < cfg.aim_fraction:
            target_x, target_z, _ = placed[int(rng.integers(len(placed)))]
        direction = np.array([target_x - x, target_z - z])
        direction /= np.linalg.norm(direction)
        speed = float(rng.uniform(max(cfg.speed[0], 0.6 * cfg.speed[1]), cfg.speed[1]))
        objs.append(_Obj(**attrs, spawn_frame=spawn, position=(x, float(z)),
                         velocity=tuple(speed * direction), angle=float(rng.uniform(0, 2 * math.pi)),
                         role="entering"))
    return objs


# ----------------------------------------------------------------------------- physics


def _simulate(cfg: ClevrerLikeConfig, objs: list[_Obj]) -> tuple[np.ndarray, np.ndarray]:
    """Run pymunk; return floor positions ``(T, N, 2)`` (NaN before spawn) and yaws ``(T, N)``."""
    from mint_rl.envs._compat import import_pymunk

    pymunk = import_pymunk()

    space = pymunk.Space()
    space.damping = cfg.damping
    n, t_total = len(objs), cfg.num_frames
    pos = np.full((t_total, n, 2), np.nan, np.float64)
    yaw = np.zeros((t_total, n), np.float64)
    bodies: list[Any] = [None] * n
    dt = 1.0 / (cfg.fps * cfg.substeps)
    gone = [False] * n  # controlled exits are taken out of the world once out of view
    for t in range(t_total):
        for i, o in enumerate(objs):
            b = bodies[i]
            if b is not None and o.role == "leaving" and o.launch_frame > 0:
                if abs(b.position.x) > _half_width(cfg, b.position.y) + 3.0 * o.radius:
                    space.remove(b, *b.shapes)
                    bodies[i], gone[i] = None, True
        for i, o in enumerate(objs):
            if gone[i]:
                continue
            if bodies[i] is None and t >= o.spawn_frame and _free(space, bodies, objs, o):
                bodies[i] = _add_body(pymunk, space, o, moving=t >= o.launch_frame)
            elif bodies[i] is not None and t == o.launch_frame > o.spawn_frame:
                bodies[i].velocity = o.velocity
        for i, b in enumerate(bodies):
            if b is not None:
                pos[t, i] = (b.position.x, b.position.y)
                yaw[t, i] = b.angle
        for _ in range(cfg.substeps):
            space.step(dt)
    return pos, yaw


def _free(space: Any, bodies: list[Any], objs: list[_Obj], o: _Obj) -> bool:
    """Whether ``o`` can be spawned without overlapping a body already in the space."""
    for b, other in zip(bodies, objs):
        if b is None:
            continue
        d2 = (b.position.x - o.position[0]) ** 2 + (b.position.y - o.position[1]) ** 2
        if d2 < (o.radius + other.radius + 0.2) ** 2:
            return False
    return True


def _add_body(pymunk: Any, space: Any, o: _Obj, moving: bool = True) -> Any:
    mass = o.radius**2
    if o.shape == "cube":
        side = 2.0 * 0.85 * o.radius
        body = pymunk.Body(mass, pymunk.moment_for_box(mass, (side, side)))
        shape = pymunk.Poly.create_box(body, (side, side))
    else:
        body = pymunk.Body(mass, pymunk.moment_for_circle(mass, 0, o.radius))
        shape = pymunk.Circle(body, o.radius)
    shape.elasticity = 0.8
    shape.friction = 0.4
    body.position = o.position
    body.velocity = o.velocity if moving else (0.0, 0.0)
    body.angle = o.angle
    space.add(body, shape)
    return body


# ----------------------------------------------------------------------------- drawing


def floor_image(cfg: ClevrerLikeConfig, seed: int) -> np.ndarray:
    """The empty floor of a clip: ``(H, W, 3)`` float32 on 0..255, no noise.

    A grey floor, brighter towards the camera and under a soft light spot.

    Example:
        >>> floor_image(CLEVRER_LIKE_PRESETS["small"], 0).shape
        (96, 160, 3)
    """
    rng = np.random.default_rng([seed, 1])
    h, w = cfg.height, cfg.width
    yy = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
    xx = np.linspace(-1.0, 1.0, w, dtype=np.float32)[None, :]
    lx, ly = rng.uniform(-0.5, 0.5), rng.uniform(0.3, 0.8)
    spot = np.exp(-((xx - lx) ** 2 / 0.9 + (yy - ly) ** 2 / 0.5))
    light = 0.78 + 0.14 * yy + 0.16 * spot
    base = 150.0 + rng.uniform(-12.0, 12.0)
    tint = 1.0 + rng.uniform(-0.03, 0.03, size=3)
    return (base * light[..., None] * tint.astype(np.float32)).astype(np.float32)


def shade(normals: np.ndarray, albedo: np.ndarray, metal: bool) -> np.ndarray:
    """Lambertian shading plus a specular highlight, in view space (x right, y down, z to camera).

    Args:
        normals: ``(..., 3)`` unit normals.
        albedo: ``(3,)`` RGB on 0..255.
        metal: shiny material (darker diffuse, sharp strong highlight) or matte rubber.

    Returns:
        ``(..., 3)`` float32 RGB on 0..255 (not clipped).

    Example:
        >>> up_to_light = np.array([[-0.45, -0.75, 0.5]]) / np.linalg.norm([-0.45, -0.75, 0.5])
        >>> bool(shade(up_to_light, np.array([100., 100., 100.]), False)[0, 0] > 100)
        True
    """
    lam = np.clip(normals @ _LIGHT, 0.0, 1.0)[..., None]
    spec = np.clip(normals @ _HALF, 0.0, 1.0)[..., None]
    albedo = np.asarray(albedo, np.float32)
    if metal:
        env = 0.25 * (1.0 - np.abs(normals[..., 2:3]))
        return albedo * (0.18 + 0.55 * lam + env) + 255.0 * (0.95 * spec**60 + 0.15 * spec**6)
    return albedo * (0.35 + 0.72 * lam) + 255.0 * 0.05 * spec**8


def _bbox(x0: float, x1: float, y0: float, y1: float, w: int, h: int) -> tuple[int, int, int, int] | None:
    xa, xb = max(int(math.floor(x0)) - 1, 0), min(int(math.ceil(x1)) + 2, w)
    ya, yb = max(int(math.floor(y0)) - 1, 0), min(int(math.ceil(y1)) + 2, h)
    if xa >= xb or ya >= yb:
        return None
    return xa, xb, ya, yb


def _ellipse_sd(dx: np.ndarray, dy: np.ndarray, a: float, b: float) -> np.ndarray:
    """Approximate signed distance (pixels, negative inside) to an axis-aligned ellipse."""
    q = (dx / a) ** 2 + (dy / b) ** 2
    grad = 2.0 * np.sqrt((dx / a**2) ** 2 + (dy / b**2) ** 2) + 1e-6
    return (q - 1.0) / grad


def _polygon_sd(px: np.ndarray, py: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Signed distance (pixels, negative inside) to a convex polygon ``(n, 2)`` of either winding."""
    n = len(poly)
    area2 = sum(poly[i, 0] * poly[(i + 1) % n, 1] - poly[(i + 1) % n, 0] * poly[i, 1] for i in range(n))
    sign = 1.0 if area2 > 0 else -1.0
    inside = np.full(px.shape, -np.inf, np.float32)
    outside = np.full(px.shape, np.inf, np.float32)
    for i in range(n):
        ax, ay = poly[i]
        bx, by = poly[(i + 1) % n]
        ex, ey = bx - ax, by - ay
        length2 = ex * ex + ey * ey + 1e-12
        # outward distance to the edge's line: cross(edge, p - a) has the winding's sign inside
        inside = np.maximum(inside, -sign * (ex * (py - ay) - ey * (px - ax)) / math.sqrt(length2))
        # distance to the edge segment (exact outside, also near the vertices)
        s = np.clip(((px - ax) * ex + (py - ay) * ey) / length2, 0.0, 1.0)
        outside = np.minimum(outside, np.hypot(px - ax - s * ex, py - ay - s * ey))
    return np.where(inside > 0.0, outside, inside)


def _view_normal_horizontal(nx: np.ndarray, nz_toward: np.ndarray, s_phi: float, c_phi: float) -> np.ndarray:
    """View-space normal of a horizontal world normal (right part ``nx``, towards-camera part)."""
    return np.stack([nx, nz_toward * s_phi, nz_toward * c_phi], axis=-1)


def render_object(
    shape: str, u0: float, v0: float, radius_px: float, s_phi: float, c_phi: float, yaw: float,
    albedo: np.ndarray, metal: bool, height: int, width: int,
) -> tuple[tuple[int, int, int, int], np.ndarray, np.ndarray] | None:
    """Draw one object into its bounding box.

    Args:
        shape: ``"sphere"``, ``"cube"`` or ``"cylinder"``.
        u0, v0: pixel of the object's floor contact point.
        radius_px: object radius in pixels at its depth (world radius times ``f / Z``).
        s_phi, c_phi: sine and cosine of the viewing elevation angle at the object.
        yaw: rotation about the vertical axis (cubes).
        albedo: ``(3,)`` RGB on 0..255; metal: shiny material.
        height, width: image size (the box is clipped to it).

    Returns:
        ``((x0, x1, y0, y1), alpha (h, w) float32 in [0, 1], rgb (h, w, 3) float32)`` or
        ``None`` when the object lies outside the image.

    Example:
        >>> box, alpha, rgb = render_object("sphere", 20, 30, 8, 0.6, 0.8, 0.0,
        ...                                 np.array([200., 0., 0.]), False, 40, 40)
        >>> bool(alpha.max() == 1.0), rgb.shape[-1]
        (True, 3)
    """
    r = radius_px
    if shape == "sphere":
        cy = v0 - r * c_phi
        box = _bbox(u0 - r, u0 + r, cy - r, cy + r, width, height)
        if box is None:
            return None
        x0, x1, y0, y1 = box
        px = np.arange(x0, x1, dtype=np.float32)[None, :] - u0
        py = np.arange(y0, y1, dtype=np.float32)[:, None] - cy
        d = np.sqrt(px**2 + py**2)
        sd = d - r
        nx, ny = px / r, py / r
        scale = np.minimum(1.0, 1.0 / np.maximum(d / r, 1e-6))
        nx, ny = nx * scale, ny * scale
        nz = np.sqrt(np.clip(1.0 - nx**2 - ny**2, 0.0, 1.0))
        normals = np.stack(np.broadcast_arrays(nx, ny, nz), axis=-1)
        rgb = shade(normals, albedo, metal)
    elif shape == "cylinder":
        a, b = r, max(r * s_phi, 0.5)
        yt, yb = v0 - 2.0 * r * c_phi, v0
        box = _bbox(u0 - a, u0 + a, yt - b, yb + b, width, height)
        if box is None:
            return None
        x0, x1, y0, y1 = box
        px = np.broadcast_to(np.arange(x0, x1, dtype=np.float32)[None, :] - u0, (y1 - y0, x1 - x0))
        yy = np.broadcast_to(np.arange(y0, y1, dtype=np.float32)[:, None], (y1 - y0, x1 - x0))
        sd_top = _ellipse_sd(px, yy - yt, a, b)
        sd_rect = np.maximum(np.abs(px) - a, np.maximum(yt - yy, yy - yb))
        sd_bot = _ellipse_sd(px, yy - yb, a, b)
        sd = np.minimum(sd_top, np.minimum(sd_rect, sd_bot))
        nxs = np.clip(px / a, -1.0, 1.0)
        side = shade(_view_normal_horizontal(nxs, np.sqrt(1.0 - nxs**2), s_phi, c_phi), albedo, metal)
        top = shade(np.array([0.0, -c_phi, s_phi], np.float32), albedo, metal)
        rgb = np.where((sd_top <= 0.0)[..., None], top, side)
    elif shape == "cube":
        hs = 0.85 * r
        c, s = math.cos(yaw), math.sin(yaw)
        corners = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]], np.float32) * hs
        world = corners @ np.array([[c, s], [-s, c]], np.float32)  # rotated (X, Z) offsets
        # screen offsets: du = X, dv = -(Z sin(phi) + Y cos(phi))
        base = np.stack([world[:, 0], -world[:, 1] * s_phi], axis=1)
        lift = np.array([0.0, -2.0 * hs * c_phi], np.float32)
        top_poly = base + lift
        allpts = np.concatenate([base, top_poly]) + np.array([u0, v0], np.float32)
        box = _bbox(allpts[:, 0].min(), allpts[:, 0].max(), allpts[:, 1].min(), allpts[:, 1].max(),
                    width, height)
        if box is None:
            return None
        x0, x1, y0, y1 = box
        px = np.broadcast_to(np.arange(x0, x1, dtype=np.float32)[None, :] - u0, (y1 - y0, x1 - x0))
        py = np.broadcast_to(np.arange(y0, y1, dtype=np.float32)[:, None] - v0, (y1 - y0, x1 - x0))
        faces = [top_poly]
        colours = [shade(np.array([0.0, -c_phi, s_phi], np.float32), albedo, metal)]
        for i in range(4):
            j = (i + 1) % 4
            mid = 0.5 * (world[i] + world[j])
            n_w = mid / (np.linalg.norm(mid) + 1e-9)  # horizontal outward normal (X, Z)
            if n_w[1] >= 0.0:  # faces away from the camera
                continue
            faces.append(np.stack([base[i], base[j], top_poly[j], top_poly[i]]))
            colours.append(shade(_view_normal_horizontal(np.float32(n_w[0]), np.float32(-n_w[1]),
                                                         s_phi, c_phi), albedo, metal))
        sds = np.stack([_polygon_sd(px, py, f) for f in faces])
        which = np.argmin(sds, axis=0)
        sd = np.take_along_axis(sds, which[None], axis=0)[0]
        rgb = np.stack(colours).astype(np.float32)[which]
    else:
        raise ValueError(f"shape: expected one of {SHAPES}, got {shape!r}")
    alpha = np.clip(0.5 - sd, 0.0, 1.0).astype(np.float32)
    return box, alpha, rgb.astype(np.float32)


def _draw_shadow(canvas: np.ndarray, u0: float, v0: float, r: float, s_phi: float) -> None:
    a, b = 1.4 * r, max(1.4 * r * s_phi, 1.0)
    cu, cv = u0 + 0.55 * r, v0 - 0.25 * r * s_phi
    box = _bbox(cu - 2 * a, cu + 2 * a, cv - 2 * b, cv + 2 * b, canvas.shape[1], canvas.shape[0])
    if box is None:
        return
    x0, x1, y0, y1 = box
    q = ((np.arange(x0, x1, dtype=np.float32)[None, :] - cu) / a) ** 2 + (
        (np.arange(y0, y1, dtype=np.float32)[:, None] - cv) / b
    ) ** 2
    canvas[y0:y1, x0:x1] *= (1.0 - 0.45 * np.exp(-1.5 * q))[..., None]


def project_contact(cfg: ClevrerLikeConfig, x: float, z: float) -> tuple[float, float, float, float, float]:
    """Contact pixel ``(u, v)``, pixels per world unit, sin and cos of the elevation angle."""
    f = cfg.focal
    u = 0.5 * (cfg.width - 1) + f * x / z
    v = cfg.v_horizon + f * cfg.camera_height / z
    hyp = math.hypot(cfg.camera_height, z)
    return u, v, f / z, cfg.camera_height / hyp, z / hyp


# ----------------------------------------------------------------------------- the clip


def generate_clip(cfg: ClevrerLikeConfig, seed: int, name: str | None = None) -> Clip:
    """Generate one CLEVRER-like clip, deterministic in ``(cfg, seed)``.

    Returns:
        A :class:`~mint_rl.data.clip.Clip` with ``frames (T, H, W, 3)`` uint8, ``masks (T, H, W)``
        int32 (object ``i`` has id ``i + 1``), ``objects`` (id, shape, color, material, size,
        radius, role, spawn_frame) and ``tracks``: ``world_xz (T, N, 2)`` floor position (NaN
        before spawning), ``pixel_xy (T, N, 2)`` pixel of the object's centre, ``yaw (T, N)``,
        ``area (T, N)`` mask pixels, ``visible (T, N)`` (``area > 0``), ``in_view (T, N)``
        (the drawn box meets the image).

    Example:
        >>> cfg = clevrer_like_preset("small", num_frames=4)
        >>> a, b = generate_clip(cfg, 3), generate_clip(cfg, 3)
        >>> bool((a.frames == b.frames).all() and (a.masks == b.masks).all())
        True
    """
    if not isinstance(cfg, ClevrerLikeConfig):
        raise TypeError(f"cfg: expected ClevrerLikeConfig, got {type(cfg).__name__}")
    rng = np.random.default_rng([int(seed), 0])
    objs = _layout(cfg, rng)
    pos, yaw = _simulate(cfg, objs)
    floor = floor_image(cfg, seed)
    noise_rng = np.random.default_rng([int(seed), 2])
    t_total, h, w, n = cfg.num_frames, cfg.height, cfg.width, len(objs)
    frames = np.empty((t_total, h, w, 3), np.uint8)
    masks = np.zeros((t_total, h, w), np.int32)
    pixel_xy = np.full((t_total, n, 2), np.nan, np.float32)
    in_view = np.zeros((t_total, n), bool)
    albedos = [np.asarray(COLORS[o.color], np.float32) for o in objs]
    for t in range(t_total):
        canvas = floor.copy()
        live = [i for i in range(n) if not np.isnan(pos[t, i, 0])]
        proj = {i: project_contact(cfg, pos[t, i, 0], max(pos[t, i, 1], 1.0)) for i in live}
        if cfg.shadows:
            for i in live:
                u, v, scale, s_phi, _ = proj[i]
                _draw_shadow(canvas, u, v, objs[i].radius * scale, s_phi)
        mask = masks[t]
        for i in sorted(live, key=lambda j: -pos[t, j, 1]):  # far to near (painter)
            u, v, scale, s_phi, c_phi = proj[i]
            r_px = objs[i].radius * scale
            pixel_xy[t, i] = (u, v - r_px * c_phi)
            drawn = render_object(objs[i].shape, u, v, r_px, s_phi, c_phi, yaw[t, i], albedos[i],
                                  objs[i].material == "metal", h, w)
            if drawn is None:
                continue
            in_view[t, i] = True
            (x0, x1, y0, y1), alpha, rgb = drawn
            region = canvas[y0:y1, x0:x1]
            region += alpha[..., None] * (rgb - region)
            mask[y0:y1, x0:x1][alpha >= 0.5] = i + 1
        if cfg.noise_std > 0:
            canvas += noise_rng.standard_normal(canvas.shape, dtype=np.float32) * np.float32(cfg.noise_std)
        np.clip(canvas, 0.0, 255.0, out=canvas)
        frames[t] = (canvas + 0.5).astype(np.uint8)
    area = np.stack([np.bincount(m.ravel(), minlength=n + 1)[1:] for m in masks]) if n else np.zeros(
        (t_total, 0), np.int64)
    objects = [
        {"id": i + 1, "shape": o.shape, "color": o.color, "material": o.material, "size": o.size,
         "radius": o.radius, "role": o.role, "spawn_frame": o.spawn_frame, "launch_frame": o.launch_frame}
        for i, o in enumerate(objs)
    ]
    tracks = {
        "world_xz": pos.astype(np.float32), "pixel_xy": pixel_xy, "yaw": yaw.astype(np.float32),
        "area": area.astype(np.int64), "visible": area > 0, "in_view": in_view,
    }
    return Clip(frames=frames, masks=masks, name=name if name is not None else f"clevrer_like_{seed:05d}",
                fps=cfg.fps, objects=objects, tracks=tracks)


def config_to_dict(cfg: ClevrerLikeConfig) -> dict[str, Any]:
    """JSON-able dict of a config (tuples become lists).

    Example:
        >>> config_to_dict(CLEVRER_LIKE_PRESETS["small"])["width"]
        160
    """
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()}
