SECRET_KEY = 'dev-from-the-instance-folder'
GREETING = 'Hello from instance/config.py'
