"""Citizen-facing Vietnamese wording of numbered choices, for channels without inline buttons
(Zalo). Beside bot/contracts/texts.py so all wording can be reviewed together."""

# Emoji-only labels read oddly as a numbered line; say what they mean.
LABELS = {"👍": "👍 Hữu ích", "👎": "👎 Chưa hữu ích"}

CHOOSE = "Gõ {numbers} để chọn."
CHOOSE_RANGE = "Gõ một số từ {first} đến {last} để chọn."
ANSWER_QUIZ = "Gõ {numbers} để trả lời."
ANSWER_QUIZ_RANGE = "Gõ một số từ {first} đến {last} để trả lời."
OR = "hoặc"
OUT_OF_RANGE = "Bạn vui lòng gõ một số từ 1 đến {last} để chọn, hoặc gõ câu hỏi của mình."
QUIZ_RIGHT = "✅ Chính xác!"
QUIZ_WRONG = "❌ Chưa đúng. Đáp án đúng là {number}. {option}"
