"""The demo's video and summary from recorded episodes (no ROS here: records built by hand)."""
import numpy as np
import pytest

from actjepa_core.evaluation import demo_video as dv
from actjepa_core.evaluation.demo_video import EpisodeRecord

SIDE = 24


def record(steps, solved_at=None, extra_start_frames=1, latencies=None):
    frames = [np.full((SIDE, SIDE, 3), 10 * i % 250, np.uint8)
              for i in range(steps + extra_start_frames)]
    success = [solved_at is not None and i + 1 >= solved_at for i in range(steps)]
    latency = list(np.arange(1, steps + 1) * 0.5) if latencies is None else latencies
    return EpisodeRecord(frames, success, latency)


def test_frames_carry_the_picture_enlarged_with_a_status_bar():
    frame = dv.annotate(np.zeros((SIDE, SIDE, 3), np.uint8), "push-v3", 0, 3, 5, True, 1.5,
                        False)
    scale = max(dv.SCALE, dv.VIDEO_SIDE // SIDE)  # small pictures grow to about VIDEO_SIDE
    assert frame.shape == (SIDE * scale + dv.BAR_PX, SIDE * scale, 3)
    assert tuple(frame[0, SIDE]) == dv.GREEN  # solved: green border
    running = dv.annotate(np.zeros((SIDE, SIDE, 3), np.uint8), "push-v3", 0, 3, 5, False,
                          None, False)
    assert tuple(running[0, SIDE]) == dv.GREY


def test_a_camera_policy_s_input_is_shown_pixel_for_pixel_in_a_corner():
    picture = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    frame = dv.annotate(picture, "push-v3", 0, 1, 5, False, 1.0, False, inset=True)
    top, left = dv.INSET_MARGIN + 12, frame.shape[1] - 64 - dv.INSET_MARGIN
    np.testing.assert_array_equal(frame[top:top + 64, left:left + 64], picture)
    plain = dv.annotate(picture, "push-v3", 0, 1, 5, False, 1.0, False)
    assert not np.array_equal(plain[top:top + 64, left:left + 64], picture)


def test_every_camera_the_policy_read_is_shown_below_the_first():
    rng = np.random.default_rng(0)
    scene, wrist = (rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(2))
    frame = dv.annotate(scene, "push-v3", 0, 1, 5, False, 1.0, False, inset=True,
                        views=[("behindGripper", wrist)])
    left = frame.shape[1] - 64 - dv.INSET_MARGIN
    top = dv.INSET_MARGIN + dv.INSET_LABEL_PX
    np.testing.assert_array_equal(frame[top:top + 64, left:left + 64], scene)
    below = top + 64 + dv.INSET_MARGIN + dv.INSET_LABEL_PX
    np.testing.assert_array_equal(frame[below:below + 64, left:left + 64], wrist)


def test_a_view_that_would_leave_the_picture_is_left_out():
    picture = np.zeros((24, 24, 3), np.uint8)  # enlarged to VIDEO_SIDE: room for two insets
    views = [(f"camera{i}", np.full((64, 64, 3), 200, np.uint8)) for i in range(5)]
    frame = dv.annotate(picture, "push-v3", 0, 1, 5, False, 1.0, False, views=views)
    assert frame.shape[0] == 24 * (dv.VIDEO_SIDE // 24) + dv.BAR_PX  # nothing grew or broke


def test_other_cameras_align_from_the_end_and_repeat_their_first_frame():
    frames = [np.full((SIDE, SIDE, 3), v, np.uint8) for v in (1, 2, 3)]
    assert [int(f[0, 0, 0]) for f in dv.aligned(frames, 2)] == [2, 3]
    assert [int(f[0, 0, 0]) for f in dv.aligned(frames, 5)] == [1, 1, 1, 2, 3]


def test_episode_frames_align_steps_success_and_latency(monkeypatch):
    seen = []
    monkeypatch.setattr(dv, "annotate", lambda frame, task, e, n, step, solved, latency, done,
                        inset, views: seen.append((step, solved, latency, done)) or frame)
    # 3 start frames (the sim re-sent its first picture), 4 steps, solved at step 3, and the
    # first latency sample lost while the subscription was being matched
    dv.episode_frames(record(4, solved_at=3, extra_start_frames=3, latencies=[2.0, 3.0, 4.0]),
                      0, 1, "t")
    assert seen == [(0, False, None, False), (1, False, None, False), (2, False, 2.0, False),
                    (3, True, 3.0, False), (4, True, 4.0, True)]


def test_video_holds_each_last_frame_and_writes_mp4_and_gif(tmp_path):
    import av  # the data extra: make setup installs it
    records = [record(5, solved_at=4), record(3)]
    frames = dv.video_frames(records, "reach-v3")
    hold = int(dv.HOLD_S * dv.FPS)
    assert len(frames) == (6 - 1 + hold) + (4 - 1 + hold)
    mp4 = dv.write_video(tmp_path / "d.mp4", frames)
    with av.open(str(mp4)) as container:
        assert sum(1 for _ in container.decode(video=0)) == len(frames)
    from PIL import Image

    gif = Image.open(dv.write_video(tmp_path / "d.gif", frames))
    durations = []  # Pillow merges repeated frames into one longer frame
    for i in range(gif.n_frames):
        gif.seek(i)
        durations.append(gif.info["duration"])
    assert gif.n_frames >= 2
    assert sum(durations) == pytest.approx(1000 * len(frames) / dv.FPS, rel=0.1)
    with pytest.raises(dv.ActJepaError, match="expected .mp4 or .gif"):
        dv.write_video(tmp_path / "d.avi", frames)
    with pytest.raises(dv.ActJepaError, match="no camera frames"):
        dv.video_frames([EpisodeRecord([], [False])], "reach-v3")


def test_summary_and_still_frame(tmp_path):
    records = [record(5, solved_at=4), record(8)]
    png = dv.write_summary(tmp_path / "s.png", records, "push-v3")
    assert png.read_bytes()[:4] == b"\x89PNG"
    still = dv.still(records, "push-v3")
    assert tuple(still[0, SIDE]) == dv.GREEN  # the end of the solved episode
    assert dv.write_frame(tmp_path / "f.png", still).read_bytes()[:4] == b"\x89PNG"
