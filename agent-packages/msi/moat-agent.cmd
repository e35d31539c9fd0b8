@echo off
rem The agent's command line for an administrator: moat-agent status, moat-agent enroll URL --token T
if not defined MOAT_AGENT_DIR set "MOAT_AGENT_DIR=%ProgramData%\Moat Agent"
"%~dp0node.exe" "%~dp0app\bin\moat-agent" %*
