from gniazdo.cli import main

main()
