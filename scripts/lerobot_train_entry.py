"""`lerobot-train` as our commands start it: LeRobot's own `main()`, with one noisy import warning muted.

LeRobot resolves its default video backend while parsing the config, even when `--dataset.video_backend`
is given; where torchcodec is installed but its FFmpeg libraries are missing (this CPU image), that logs a
~200-line loader traceback before training and then falls back to pyav. Our commands pass
`--dataset.video_backend=pyav` explicitly, so the warning tells the user nothing. Users of raw
`lerobot-train` add the same flag and may ignore the warning.
"""

import logging


def main() -> None:
    logging.getLogger("lerobot.utils.import_utils").setLevel(logging.ERROR)
    from lerobot.scripts.lerobot_train import main as lerobot_train_main

    lerobot_train_main()


if __name__ == "__main__":
    main()
