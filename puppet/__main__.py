from puppet.cli import main

main()
