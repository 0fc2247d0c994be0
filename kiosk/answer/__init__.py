"""The answer stage: ranked hits in, one decision out — answer, ask back, or say honestly
that nothing fits. It never reads a wrong answer out with confidence.

CONTRACT:
    Answer, AnswerKind, topic_of (contract.py): the decision, plain data
    AnswerComposer(settings.answer, categories).compose(query, hits) -> Answer (composer.py)
"""
