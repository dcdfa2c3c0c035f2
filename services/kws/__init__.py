"""Wake-word («Маруся») spotting in playback audio: skip_kws intervals, echo calibration, reports."""
