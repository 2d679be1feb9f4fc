"""Citizen-facing Vietnamese wording, kept in one place so it can be reviewed together."""

GREETING = (
    "Xin chào! Tôi là trợ lý hỗ trợ dịch vụ công trực tuyến, VNeID, thanh toán số và "
    "an toàn trên mạng.\n"
    "Bạn cứ gõ câu hỏi (có dấu hoặc không dấu đều được), hoặc chọn một mục bên dưới."
)
MENU_PROMPT = "Bạn cần hỏi về chủ đề nào?"
CATEGORY_PROMPT = "Các câu hỏi thường gặp về {label}:"
SUGGEST = "Có phải bạn muốn hỏi:"
NOT_THESE = "Không phải"
FEEDBACK_QUESTION = "Câu trả lời có hữu ích không?"
FEEDBACK_THANKS_UP = "Cảm ơn bạn! Rất vui vì đã giúp được bạn."
FEEDBACK_THANKS_DOWN = (
    "Cảm ơn bạn đã góp ý. Bạn có thể hỏi lại theo cách khác, hoặc gửi câu hỏi cho "
    "cán bộ Tổ công nghệ số cộng đồng."
)
FALLBACK = (
    "Xin lỗi, tôi chưa có câu trả lời cho câu hỏi này. Bạn có thể chọn chủ đề bên dưới, "
    "hỏi lại ngắn gọn hơn, hoặc gửi câu hỏi cho cán bộ Tổ công nghệ số cộng đồng."
)
NOT_THESE_REPLY = (
    "Vậy tôi chưa hiểu đúng ý bạn. Bạn thử hỏi lại bằng từ khác, chọn chủ đề bên dưới, "
    "hoặc gửi câu hỏi cho cán bộ."
)
INTERNAL_ERROR = (
    "Xin lỗi, hệ thống đang gặp trục trặc nên tôi chưa xử lý được tin nhắn của bạn. "
    "Bạn vui lòng thử lại sau ít phút nhé."
)
ASK_TYPE_TEXT = "Xin lỗi, tôi chỉ đọc được tin nhắn chữ. Bạn vui lòng gõ câu hỏi nhé."
EMPTY = "Bạn vui lòng gõ câu hỏi của mình nhé."
UNKNOWN_COMMAND = "Tôi chưa hiểu lệnh này. Gõ /menu để xem các chủ đề, hoặc gõ câu hỏi của bạn."
UNKNOWN_ACTION = "Nút này đã cũ hoặc không còn dùng được. Mời bạn chọn lại từ menu."
RELATED = "Câu hỏi liên quan:"
SEND_TO_TEAM = "Gửi câu hỏi cho cán bộ"
TALK_TO_STAFF = "Gặp cán bộ"
MENU = "Menu chính"
LINKS_HEADER = "Xem thêm:"

# --- hand-off to the community team ---------------------------------------------
BACK_TO_BOT = "Quay lại trợ lý"
OFFER_TEAM_AFTER_FALLBACKS = (
    "Có vẻ tôi chưa giúp được bạn. Bạn có muốn gửi câu hỏi cho cán bộ Tổ công nghệ số "
    "cộng đồng không? Cán bộ sẽ trả lời bạn ngay trong cuộc trò chuyện này."
)
ASK_QUESTION_FOR_TEAM = "Bạn vui lòng gõ câu hỏi cần gửi cho cán bộ, tôi sẽ chuyển ngay."
HANDOFF_SENT = (
    "Tôi đã chuyển câu hỏi của bạn tới Tổ công nghệ số cộng đồng (mã #{id}). Cán bộ thường "
    "trả lời trong giờ hành chính, có thể mất vài giờ. Câu trả lời sẽ hiện ngay tại đây.\n"
    "Trong lúc chờ, tin nhắn bạn gửi thêm sẽ được chuyển cho cán bộ."
)
HANDOFF_NO_TEAM = (
    "Tôi đã ghi nhận câu hỏi của bạn (mã #{id}) để cán bộ xem xét. Hiện kênh này chưa có cán bộ "
    "trực tuyến; bạn cũng có thể đến bộ phận một cửa của xã/phường để được hỗ trợ trực tiếp."
)
HANDOFF_ALREADY_OPEN = (
    "Câu hỏi #{id} của bạn đang chờ cán bộ trả lời. Tin nhắn bạn gửi thêm sẽ được chuyển "
    "cho cán bộ; câu trả lời sẽ hiện ngay tại đây."
)
HANDOFF_ADDED = "Tôi đã chuyển thêm câu hỏi này vào yêu cầu #{id} đang chờ cán bộ trả lời."
HANDOFF_FOLLOWUP_SENT = "Đã chuyển thêm cho cán bộ. Bấm \"Quay lại trợ lý\" nếu bạn muốn hỏi trợ lý."
HANDOFF_LEFT = "Bạn đã quay lại trò chuyện với trợ lý. Cán bộ vẫn có thể trả lời câu hỏi trước của bạn."
TEAM_REPLY = "💬 Cán bộ Tổ công nghệ số cộng đồng trả lời (mã #{id}):\n\n{text}"
TEAM_CLOSED_TO_CITIZEN = "Cán bộ đã xử lý xong câu hỏi #{id} của bạn. Cảm ơn bạn!"
AUTO_CLOSED_TO_CITIZEN = (
    "Yêu cầu #{id} của bạn đã được đóng vì một thời gian không có trao đổi thêm. Nếu cần hỏi tiếp, "
    "bạn cứ nhắn cho trợ lý hoặc chọn \"Gặp cán bộ\"."
)
GROUP_NEW = "📩 Câu hỏi #{id} từ người dân{ward}:\n\n{text}\n\n↩️ Trả lời tin nhắn này để gửi câu trả lời cho người dân."
GROUP_FOLLOWUP = "➕ Người dân bổ sung cho câu hỏi #{id}:\n\n{text}"
GROUP_REMINDER = (
    "⏰ Câu hỏi #{id} chưa có ai trả lời. Mời cán bộ trả lời (reply) tin nhắn này hoặc tin nhắn câu hỏi."
)
GROUP_RELAYED = "✅ Đã gửi câu trả lời tới người dân (câu hỏi #{id})."
GROUP_RELAY_PENDING = (
    "⏳ Chưa gửi được câu trả lời cho câu hỏi #{id} vì kênh nhắn tin đang trục trặc. "
    "Câu trả lời đã được lưu, hệ thống sẽ tự gửi lại."
)
GROUP_RELAY_WINDOW = (
    "⏳ Câu trả lời cho câu hỏi #{id} đã được lưu nhưng chưa gửi được: kênh của người dân chỉ cho phép "
    "gửi khi họ nhắn tin lại. Hệ thống sẽ gửi ngay khi người dân nhắn tiếp."
)
GROUP_CITIZEN_GONE = (
    "⚠️ Không gửi được câu trả lời cho câu hỏi #{id}: người dân đã chặn hoặc ngừng dùng trợ lý nên "
    "không liên lạc được qua kênh này nữa. Câu hỏi đã được đóng."
)
GROUP_RELAY_REJECTED = (
    "⚠️ Kênh nhắn tin từ chối câu trả lời cho câu hỏi #{id} ({reason}); người dân chưa nhận được. "
    "Cán bộ vui lòng trả lời lại bằng nội dung khác."
)
GROUP_CLOSED = "✔️ Câu hỏi #{id} đã được đánh dấu xử lý bởi {who}."
GROUP_ALREADY_CLOSED = "Câu hỏi #{id} đã được đóng trước đó."
GROUP_AUTO_CLOSED = "🔒 Câu hỏi #{id} đã tự động đóng vì không có trao đổi trong {hours} giờ."
GROUP_INTERNAL_ERROR = (
    "⚠️ Hệ thống đang gặp trục trặc nên chưa xử lý được tin nhắn này. Cán bộ vui lòng gửi lại sau ít phút."
)
GROUP_DRAFTED = "📝 Đã tạo bản nháp câu hỏi thường gặp từ câu hỏi #{id} để cán bộ rà soát."
GROUP_NOTHING_TO_DRAFT = "Câu hỏi #{id} chưa có câu trả lời của cán bộ để tạo bản nháp."
GROUP_UNKNOWN_THREAD = "Không tìm thấy câu hỏi tương ứng. Hãy trả lời (reply) đúng tin nhắn câu hỏi của bot."
GROUP_THREAD_CLOSED = "Câu hỏi #{id} đã đóng; người dân sẽ vẫn nhận được câu trả lời này."
MARK_DONE = "Đã xử lý"
MAKE_DRAFT = "Tạo FAQ nháp"

# --- subscriptions ----------------------------------------------------------------
SUB_CHOOSE_WARD = "Bạn ở xã/phường nào? Chọn để nhận đúng thông báo của địa phương:"
SUB_CHOOSE_TOPICS = (
    "Chọn các chủ đề bạn muốn nhận tin (bấm để chọn/bỏ chọn), rồi bấm \"Xong\".\n"
    "Đang chọn: {chosen}"
)
SUB_DONE_BUTTON = "Xong"
SUB_ALL_TOPICS = "tất cả chủ đề"
SUB_CONFIRMED = (
    "Đã đăng ký nhận tin{ward} về: {topics}. Bạn có thể gõ /huydangky hoặc \"dừng\" bất cứ lúc "
    "nào để ngừng nhận tin."
)
UNSUBSCRIBED = "Bạn đã hủy nhận tin. Gõ /dangky nếu muốn nhận lại."
NOT_SUBSCRIBED = "Bạn chưa đăng ký nhận tin. Gõ /dangky để đăng ký."

# --- privacy ----------------------------------------------------------------------------
PRIVACY = (
    "Trợ lý lưu những gì về bạn:\n"
    "1. Câu hỏi bạn gửi, sau khi đã xóa số điện thoại, số giấy tờ, email, số tài khoản/thẻ.\n"
    "2. Một mã ẩn danh thay cho tài khoản của bạn (nhật ký không chứa tên hay số điện thoại).\n"
    "3. Xã/phường và chủ đề bạn chọn khi đăng ký nhận tin, đánh giá 👍 👎 của bạn.\n"
    "4. Nội dung trao đổi với cán bộ khi bạn nhờ hỗ trợ.\n"
    "Nhật ký được tự động xóa sau {days} ngày. Gõ /xoadulieu để xóa toàn bộ dữ liệu của bạn ngay."
)
DELETE_CONFIRM = (
    "Bạn có chắc muốn xóa toàn bộ dữ liệu của mình (câu hỏi, đánh giá, đăng ký nhận tin, trao đổi "
    "với cán bộ)? Việc này không hoàn tác được."
)
DELETE_YES = "Xóa dữ liệu"
DELETE_NO = "Không xóa"
DELETED = "Đã xóa toàn bộ dữ liệu của bạn. Nếu bạn nhắn tiếp, trợ lý sẽ coi như bắt đầu mới."
DELETE_CANCELLED = "Đã hủy, dữ liệu của bạn vẫn được giữ nguyên."
NO_STORAGE = "Tính năng này tạm thời chưa dùng được. Bạn vui lòng thử lại sau."

# --- flood control and staff -------------------------------------------------------
FLOOD = "Bạn gửi hơi nhanh, tôi xin phép tạm dừng một chút. Bạn vui lòng đợi khoảng một phút rồi hỏi tiếp nhé."
STAFF_ONLY = "Lệnh này chỉ dành cho cán bộ."
STATS = (
    "📊 Thống kê\n"
    "Hôm nay: {d[questions]} câu hỏi — trợ lý trả lời {d[answer]}, gợi ý {d[suggest]}, chưa trả lời được {d[fallback]}.\n"
    "7 ngày qua: {w[questions]} câu hỏi — trả lời {w[answer]}, gợi ý {w[suggest]}, chưa trả lời được {w[fallback]}.\n"
    "Lời chào, cảm ơn, trò chuyện (không tính là câu hỏi): hôm nay {d[smalltalk]}, 7 ngày qua {w[smalltalk]}.\n"
    "Yêu cầu gặp cán bộ đang mở: {d[handoffs_open]}."
)
UNANSWERED_HEADER = "❓ Câu hỏi chưa trả lời được gần đây (nhóm theo nội dung giống nhau):"
UNANSWERED_NONE = "Chưa có câu hỏi nào mà trợ lý không trả lời được. 👍"
STAFF_USAGE = "Cách dùng: /staff add telegram:<id> [admin|staff|viewer] hoặc /staff remove telegram:<id>"
STAFF_DONE = "Đã cập nhật quyền cho {who}."

# --- knowledge freshness (handlers/freshness.py) -----------------------------------
SOURCE_LINE = "Nguồn: {site} · cập nhật {day}"
UPDATED_LINE = "Cập nhật {day}"
ENTRY_SUSPENDED = (
    "Thông tin về “{title}” đang được cập nhật, nên tôi tạm chưa trả lời để bạn không làm theo "
    "hướng dẫn cũ. Bạn có thể gửi câu hỏi cho cán bộ Tổ công nghệ số cộng đồng; cán bộ sẽ trả lời "
    "ngay trong cuộc trò chuyện này."
)

# --- /id: ids the operator needs for configuration (handlers/ids.py) ----------------
MY_ID = (
    "Mã người dùng {platform} của bạn: {user_id}\n"
    "Để cấp quyền cán bộ cho tài khoản này, quản trị viên ghi vào BOT_ADMINS (hoặc dùng lệnh "
    "/staff add): {channel}:{user_id}"
)
GROUP_ID = (
    "Mã của nhóm này: {chat_id}\n"
    "Để nhóm nhận câu hỏi người dân chuyển tới cán bộ, ghi vào TEAM_CHATS: <mã-phường>:{chat_id} "
    "(ví dụ phuong-a:{chat_id}, hoặc default:{chat_id} cho mọi phường), rồi khởi động lại trợ lý."
)
GROUP_ID_CONFIGURED = "Nhóm này đã được cấu hình trong TEAM_CHATS: {slugs}."
GROUP_ADDED = "Xin chào cả nhóm! Tôi là trợ lý hỗ trợ dịch vụ công số."

# --- small talk, two questions, follow-ups, not covered -------------------------------
SMALLTALK_GREETING = (
    "Chào bạn! Tôi là trợ lý hỏi đáp về VNeID, dịch vụ công, thanh toán số và an toàn trên mạng. "
    "Bạn cứ gõ câu hỏi (có dấu hay không dấu đều được), hoặc chọn một chủ đề bên dưới."
)
SMALLTALK_THANKS = "Dạ không có gì ạ! Bạn cần hỏi thêm gì cứ nhắn cho tôi nhé."
SMALLTALK_GOODBYE = "Chào bạn, chúc bạn một ngày tốt lành! Khi cần, bạn cứ nhắn lại cho tôi nhé."
SMALLTALK_IDENTITY = (
    "Tôi là trợ lý tự động (máy trả lời, không phải người thật), giúp bà con dùng VNeID, dịch vụ công, "
    "thanh toán số và an toàn trên mạng. Nếu cần người thật, bạn bấm \"Gặp cán bộ\" hoặc gõ \"gặp cán bộ\" "
    "để được Tổ công nghệ số cộng đồng hỗ trợ."
)
SMALLTALK_PRAISE = "Cảm ơn bạn nhiều! Rất vui vì giúp được bạn. Bạn cần hỏi gì thêm cứ nhắn nhé."
SMALLTALK_COMPLAINT = (
    "Xin lỗi bạn vì tôi chưa giúp được như mong muốn. Bạn có thể hỏi lại ngắn gọn hơn, hoặc bấm nút "
    "bên dưới để tôi chuyển câu hỏi cho cán bộ Tổ công nghệ số cộng đồng trả lời trực tiếp."
)
SMALLTALK_ACK = "Dạ. Bạn cần hỏi gì thêm cứ nhắn cho tôi nhé."
ALSO_ASKED = "Bạn cũng hỏi: {title}"
ALSO_ASKED_HEADER = "Bạn cũng hỏi:"
SECOND_PART_UNKNOWN = (
    "Phần sau của tin nhắn (\"{part}\") tôi chưa có câu trả lời. Bạn có thể hỏi lại riêng phần đó, "
    "hoặc gửi cho cán bộ Tổ công nghệ số cộng đồng."
)
FOLLOWUP_CHOICES = "Bạn muốn hỏi thêm về phần nào của \"{title}\"?"
NOT_COVERED = (
    "Mình chưa có hướng dẫn riêng cho việc này. Bạn xem các mục gần nhất bên dưới, hoặc gửi câu hỏi "
    "cho cán bộ Tổ công nghệ số cộng đồng của xã/phường để được hướng dẫn."
)
FULL_ANSWER = "Xem hướng dẫn đầy đủ"
# A follow-up asks for a part ("mất bao lâu?") that the entry does not state: say so, then the
# whole guide, rather than repeating it as if it answered the question.
NO_SUCH_PART = (
    "Hướng dẫn “{title}” chưa có thông tin riêng về {part}. Bạn xem lại hướng dẫn đầy đủ dưới đây; "
    "nếu vẫn cần biết, bạn có thể gửi câu hỏi cho cán bộ."
)
