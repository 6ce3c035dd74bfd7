"""`python -m streamer`: the same command as `streamer`, for environments without the script."""

from streamer.cli import main

if __name__ == "__main__":
    main()
