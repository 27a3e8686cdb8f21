// OpenAI
