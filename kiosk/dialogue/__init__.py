"""The visitor's dialogue: hits → a decision → what the kiosk says and shows.

    answer (decide: answer, ask back, or nothing fits) · conversation (the pure state
    machine) · wording (every sentence the visitor hears or reads) · runner (threads that
    carry the conversation's actions out with real stages) · eventlog (what is logged)

CONTRACT:
    AnswerComposer(settings).compose(...) -> Answer (answer.py)
    Conversation(settings).handle(event, now) -> list[Action] (conversation.py)
    Kiosk(settings, microphone=, speaker=, recogniser=, voice=, searcher=, …) (runner.py)
"""
