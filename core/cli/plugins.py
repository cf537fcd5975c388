import click


@click.command("plugins")
@click.pass_obj
def command(obj):
    """List the loaded plugins and the providers each contributes."""
    manager = obj.runtime.manager
    for plugin, providers in manager.iter_plugins():
        origin = "external" if plugin.external else "built-in"
        click.echo(f"{plugin.name} ({plugin.distribution} {plugin.version}, {origin})")
        for provider in providers:
            click.echo(f"    {provider.kind} {provider.name}: {provider.description}")
