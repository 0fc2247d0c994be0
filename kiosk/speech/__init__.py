"""Speech in: microphone audio → questions as text.

    audio (sounddevice, WAV files) → endpointing (Silero VAD: when a question starts and ends)
    → recogniser (whisper or vosk) → Transcript

CONTRACT:
    Microphone / Speaker / AudioClip (audio.py): float audio in memory, never on disk
    Endpointer (endpointing.py): .feed(clip) -> events (SpeechStarted, SpeechEnded, …)
    open_recogniser(settings) -> a recogniser with .transcribe(clip) -> Transcript (recogniser.py)
    models.py: installing and verifying the speech models; simulated.py: fake devices for tests
"""
