"""The simulated arm and a policy driving it: the whole loop on one machine.

    ros2 launch actjepa_ros sim.launch.py checkpoint:=/path/to/bc.pt
    ros2 launch actjepa_ros sim.launch.py checkpoint:=... sim_params_file:=my_sim.yaml

sim_node (Meta-World's Sawyer in MuJoCo, config/sim.yaml: lock-step, publishing /clock) and
policy_node (policy.launch.py, included: config/policy.yaml, lock-step, following /clock) in one
namespace, so each policy
action advances the arm by one step: a deterministic closed-loop evaluation over real topics.
Without a ROS install, start the two nodes as
``python -m actjepa_ros.sim_node --ros-args --params-file config/sim.yaml`` and
``python -m actjepa_ros.policy_node --ros-args --params-file config/policy.yaml
-p checkpoint:=...``.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, SetEnvironmentVariable
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

PACKAGE = 'actjepa_ros'
LOG_LEVEL = ['--ros-args', '--log-level', LaunchConfiguration('log_level')]


def discovery_range_environment() -> list[SetEnvironmentVariable]:
    """Localhost-only discovery unless the discovery_range argument opens it (Iron and later
    read ROS_AUTOMATIC_DISCOVERY_RANGE, Humble ROS_LOCALHOST_ONLY)."""
    chosen = LaunchConfiguration('discovery_range')
    return [SetEnvironmentVariable('ROS_AUTOMATIC_DISCOVERY_RANGE', chosen),
            SetEnvironmentVariable('ROS_LOCALHOST_ONLY', PythonExpression(
                ["'1' if '", chosen, "' == 'LOCALHOST' else '0'"]))]


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare(PACKAGE)
    arguments = [
        DeclareLaunchArgument('checkpoint', description='Policy file from `actjepa '
                              'train-policy` (required).'),
        DeclareLaunchArgument('policy_type', default_value='',
                              description="Required policy type: '' (any), bc, nn or mpc."),
        DeclareLaunchArgument('params_file',
                              default_value=PathJoinSubstitution([share, 'config', 'policy.yaml']),
                              description='policy_node parameters (ROS params-file YAML).'),
        DeclareLaunchArgument('sim_params_file',
                              default_value=PathJoinSubstitution([share, 'config', 'sim.yaml']),
                              description='sim_node parameters (ROS params-file YAML).'),
        DeclareLaunchArgument('log_level', default_value='info',
                              description='Log level of the node(s): debug, info, warn, error '
                                          'or fatal.'),
        DeclareLaunchArgument('discovery_range', default_value='LOCALHOST',
                              choices=['LOCALHOST', 'SUBNET', 'OFF', 'SYSTEM_DEFAULT'],
                              description='ROS_AUTOMATIC_DISCOVERY_RANGE of the node(s): '
                                          'LOCALHOST (default) keeps other hosts from '
                                          'discovering them; SUBNET opens them to the network '
                                          '(docs/SECURITY.md).'),
        DeclareLaunchArgument('namespace', default_value='',
                              description='Namespace for both nodes and their relative topics.'),
        DeclareLaunchArgument('use_sim_time', default_value='true',
                              description='The policy follows the simulator\'s /clock.'),
    ]
    sim = Node(package=PACKAGE, executable='sim_node', name='sim_node',
               namespace=LaunchConfiguration('namespace'), output='screen', arguments=LOG_LEVEL,
               parameters=[LaunchConfiguration('sim_params_file')])
    policy = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution([share, 'launch',
                                                            'policy.launch.py'])),
        launch_arguments={  # this file's arguments, passed on as they are
            'checkpoint': LaunchConfiguration('checkpoint'),
            'policy_type': LaunchConfiguration('policy_type'),
            'params_file': LaunchConfiguration('params_file'),
            'log_level': LaunchConfiguration('log_level'),
            'discovery_range': LaunchConfiguration('discovery_range'),
            'namespace': LaunchConfiguration('namespace'),
            'use_sim_time': LaunchConfiguration('use_sim_time'),
            'autostart': 'true',
        }.items())
    return LaunchDescription([*arguments, *discovery_range_environment(), sim, policy])
