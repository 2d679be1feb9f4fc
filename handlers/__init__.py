"""Channel-neutral conversation logic: plain incoming messages in, plain replies out.

Entry point: handlers.conversation.Conversation; boundary types: bot.contracts.messages.
"""
