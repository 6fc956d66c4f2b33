"""The CLEVRER-like generator: determinism, masks consistent with pixels, come-and-go."""

from __future__ import annotations

import numpy as np
import pytest

from mint_rl.data.synthetic import (
    CLEVRER_LIKE_PRESETS,
    ClevrerLikeConfig,
    clevrer_like_preset,
    floor_image,
    generate_clip,
    project_contact,
    render_object,
)


@pytest.fixture(scope="module")
def small_clips():
    return [generate_clip(CLEVRER_LIKE_PRESETS["small"], seed) for seed in range(4)]


def dilate(mask: np.ndarray, r: int = 1) -> np.ndarray:
    out = mask.copy()
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            out |= np.roll(np.roll(mask, dy, axis=-2), dx, axis=-1)
    return out


def test_deterministic_per_seed():
    cfg = clevrer_like_preset("small", num_frames=12)
    a, b, c = generate_clip(cfg, 5), generate_clip(cfg, 5), generate_clip(cfg, 6)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.masks, b.masks)
    assert a.objects == b.objects
    assert not np.array_equal(a.frames, c.frames)


def test_shapes_dtypes_and_ids(small_clips):
    cfg = CLEVRER_LIKE_PRESETS["small"]
    for clip in small_clips:
        assert clip.frames.shape == (cfg.num_frames, cfg.height, cfg.width, 3)
        assert clip.frames.dtype == np.uint8 and clip.masks.dtype == np.int32
        n = len(clip.objects)
        assert clip.masks.min() >= 0 and clip.masks.max() <= n
        assert [o["id"] for o in clip.objects] == list(range(1, n + 1))
        for key in ("world_xz", "pixel_xy", "visible", "area", "in_view"):
            assert clip.tracks[key].shape[:2] == (cfg.num_frames, n)
        area = np.stack([np.bincount(m.ravel(), minlength=n + 1)[1:] for m in clip.masks])
        np.testing.assert_array_equal(area, clip.tracks["area"])
        np.testing.assert_array_equal(clip.tracks["visible"], area > 0)


def test_every_changed_pixel_is_near_a_mask_and_masks_are_drawn():
    cfg = clevrer_like_preset("small", num_frames=16, noise_std=0.0, shadows=False)
    for seed in range(3):
        clip = generate_clip(cfg, seed)
        floor = np.clip(floor_image(cfg, seed) + 0.5, 0, 255).astype(np.uint8)
        changed = np.abs(clip.frames.astype(int) - floor.astype(int)).max(-1) > 1
        near_object = dilate(clip.masks > 0, 1)
        # (an object just outside the image may tint the border pixels by less than half a pixel
        # of coverage without owning them, so the outermost rows and columns are left out)
        off_mask = (changed & ~near_object)[:, 1:-1, 1:-1]
        assert not off_mask.any(), "pixels drawn off every mask"
        on_mask = clip.masks > 0
        # mask pixels show an object: almost all differ from the empty floor
        assert changed[on_mask].mean() > 0.97


def test_objects_out_of_view_have_empty_masks(small_clips):
    for clip in small_clips:
        spawned = ~np.isnan(clip.tracks["world_xz"][..., 0])
        area = clip.tracks["area"]
        assert (area[~spawned] == 0).all()
        assert (area[~clip.tracks["in_view"]] == 0).all()
        # an object whose centre is far beyond the image border shows no pixel
        uv = clip.tracks["pixel_xy"]
        far = spawned & ((uv[..., 0] < -60) | (uv[..., 0] > clip.width + 60) | (uv[..., 1] < -60))
        assert (area[far] == 0).all()


@pytest.mark.parametrize("preset", ["small", "clevrer"])
def test_come_and_go_happens(preset):
    seeds = range(3) if preset == "small" else range(1)
    for seed in seeds:
        clip = generate_clip(CLEVRER_LIKE_PRESETS[preset], seed)
        vis = clip.tracks["in_view"]
        entered = (~vis[0]) & vis.any(axis=0)
        later_gone = np.array([vis[:, i].any() and not vis[np.argmax(vis[:, i]):, i].all()
                               for i in range(vis.shape[1])])
        assert entered.any(), f"{preset} seed {seed}: no object enters"
        assert later_gone.any(), f"{preset} seed {seed}: no object leaves"
        counts = clip.tracks["visible"].sum(axis=1)
        assert counts.min() < counts.max(), "the number of visible objects never changes"


def test_static_and_moving_objects_and_variety(small_clips):
    moved, still, sizes, shapes = [], [], set(), set()
    for clip in small_clips:
        xz = clip.tracks["world_xz"]
        for i, o in enumerate(clip.objects):
            sizes.add(o["size"])
            shapes.add(o["shape"])
            track = xz[:, i][~np.isnan(xz[:, i, 0])]
            step = np.linalg.norm(track[-1] - track[0])
            (moved if step > 1.0 else still).append(i)
    assert moved and still
    assert len(sizes) == 2 and len(shapes) == 3


def test_occlusion_nearer_object_wins_and_occlusions_happen():
    cfg = CLEVRER_LIKE_PRESETS["small"]
    overlaps = 0
    for seed in range(4):
        clip = generate_clip(cfg, seed)
        xz, yaw = clip.tracks["world_xz"], clip.tracks["yaw"]
        for t in range(0, cfg.num_frames, 2):
            solo = {}
            for i in np.nonzero(clip.tracks["in_view"][t])[0]:
                u, v, scale, s_phi, c_phi = project_contact(cfg, xz[t, i, 0], xz[t, i, 1])
                o = clip.objects[i]
                drawn = render_object(o["shape"], u, v, o["radius"] * scale, s_phi, c_phi,
                                      float(yaw[t, i]), np.ones(3), False, cfg.height, cfg.width)
                (x0, x1, y0, y1), alpha, _ = drawn
                full = np.zeros((cfg.height, cfg.width), bool)
                full[y0:y1, x0:x1] = alpha >= 0.5
                solo[i] = full
                # an object's mask never exceeds what it covers when drawn alone
                assert not ((clip.masks[t] == i + 1) & ~full).any()
            for i in solo:
                for j in solo:
                    if xz[t, i, 1] < xz[t, j, 1]:  # i is nearer than j
                        both = solo[i] & solo[j]
                        if both.any():
                            overlaps += 1
                            assert (clip.masks[t][both] == i + 1).all()
    assert overlaps > 0, "no occlusion in 4 small clips"


def test_render_outside_returns_none_and_bad_shape_raises():
    assert render_object("sphere", -100, -100, 5, 0.5, 0.86, 0.0, np.ones(3), False, 40, 40) is None
    with pytest.raises(ValueError, match="shape"):
        render_object("cone", 10, 10, 5, 0.5, 0.86, 0.0, np.ones(3), False, 40, 40)


@pytest.mark.parametrize("seed", [200000, 200001, 200002])
def test_controlled_entries_and_exits_happen_at_their_frames(seed):
    cfg = CLEVRER_LIKE_PRESETS["come-and-go"]
    clip = generate_clip(cfg, seed)
    area = clip.tracks["area"]
    present = (area >= 18).sum(axis=1)  # 0.1 A_k at 160x96
    roles = [o["role"] for o in clip.objects]
    assert roles.count("leaving") == len(cfg.exit_frames) and roles.count("entering") == len(cfg.entry_frames)
    assert set(roles) <= {"leaving", "entering", "static"}  # nothing else moves on its own
    for i, o in enumerate(clip.objects):
        seen = np.flatnonzero(area[:, i] >= 18)
        if o["role"] == "leaving":  # present from the start until shortly after its launch, then never again
            assert seen[0] == 0 and o["launch_frame"] <= seen[-1] < o["launch_frame"] + 8, (o, seen)
            assert len(seen) == seen[-1] + 1
            assert np.isnan(clip.tracks["world_xz"][-1, i]).all()  # taken out of the world
        elif o["role"] == "entering":  # absent until its frame, present soon after and from then on
            assert o["spawn_frame"] < seen[0] <= o["spawn_frame"] + 5, (o, seen)
            assert (area[seen[0]:, i] >= 18).all()
    # the present count steps down, up, down, up: one object at a time, runs of >= 6 frames
    changes = np.flatnonzero(np.diff(present)) + 1
    assert np.diff(present)[changes - 1].tolist() == [-1, 1, -1, 1], present
    assert np.diff(np.concatenate([[0], changes, [len(present)]])).min() >= 6, present


def test_come_and_go_events_are_separated_from_the_random_presets():
    """The controlled preset leaves the others' clips untouched (training data and held-out seeds)."""
    cfg = CLEVRER_LIKE_PRESETS["small"]
    assert cfg.entry_frames == () and cfg.exit_frames == ()
    clip = generate_clip(clevrer_like_preset("small", num_frames=6), 0)
    assert all(o["launch_frame"] == 0 for o in clip.objects)


def test_config_validation():
    with pytest.raises(ValueError, match="n_initial"):
        ClevrerLikeConfig(n_initial=(4, 2))
    with pytest.raises(ValueError, match=r"entry_frames: expected frames in \[0, 64\)"):
        clevrer_like_preset("small", entry_frames=(70,))
    with pytest.raises(ValueError, match="exit_frames"):
        clevrer_like_preset("small", exit_frames=(-1,))
    with pytest.raises(ValueError, match="preset"):
        clevrer_like_preset("huge")
    with pytest.raises(TypeError, match="ClevrerLikeConfig"):
        generate_clip({"height": 10}, 0)
