from lbaas.cli import main

main()
